"""Where each stage reads and writes: fixed paths, so DVC can declare them."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def raw_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.data) / "raw" / cfg.corpus.name


def interim_dir(cfg: DictConfig, corpus: str | None = None) -> Path:
    return Path(cfg.paths.data) / "interim" / (corpus or cfg.corpus.name)


def processed_dir(cfg: DictConfig, encoding: str | None = None, corpus: str | None = None) -> Path:
    return Path(cfg.paths.data) / "processed" / (corpus or cfg.corpus.name) / (encoding or cfg.model.encoding)


def training_corpora(cfg: DictConfig) -> list[str]:
    """The corpora a model trains on: ``model.corpora`` for a joint model (MuseNet), else
    the selected corpus."""
    joint = cfg.model.get("corpora")
    return list(joint) if joint else [cfg.corpus.name]


def run_name(cfg: DictConfig) -> str:
    """``{model}-{corpus}``; a joint model over several corpora is ``{model}-joint``."""
    return f"{cfg.model.name}-joint" if cfg.model.get("corpora") else f"{cfg.model.name}-{cfg.corpus.name}"


def model_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.models) / run_name(cfg)


def samples_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.samples) / run_name(cfg)


def metrics_file(cfg: DictConfig) -> Path:
    return Path(cfg.paths.reports) / "metrics" / f"{run_name(cfg)}.json"
