"""Where each stage reads and writes: fixed paths, so DVC can declare them."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def raw_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.data) / "raw" / cfg.corpus.name


def interim_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.data) / "interim" / cfg.corpus.name


def processed_dir(cfg: DictConfig, encoding: str | None = None) -> Path:
    return Path(cfg.paths.data) / "processed" / cfg.corpus.name / (encoding or cfg.model.encoding)


def run_name(cfg: DictConfig) -> str:
    return f"{cfg.model.name}-{cfg.corpus.name}"


def model_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.models) / run_name(cfg)


def samples_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.samples) / run_name(cfg)


def metrics_file(cfg: DictConfig) -> Path:
    return Path(cfg.paths.reports) / "metrics" / f"{run_name(cfg)}.json"
