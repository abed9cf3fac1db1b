"""The shape every model family has: one :class:`Family` object per package under
``tunelab/families/<name>/``, exposing the verbs the pipeline's stages call.

A stage never asks which family it runs: ``family(cfg.model.family).generate(cfg)``. What
differs between families lives in their package; what they share lives here (the token
models' training setup) or in :mod:`tunelab.families.sequence` (their evaluation and
sampling). The network and the LightningModule come from the model config
(``model.net`` and ``model.module``, each a Hydra ``_target_``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from tunelab.checkpoint import load_trained
from tunelab.datamodule import EventDataModule
from tunelab.encodings.registry import ENCODINGS, MELODY_ENCODINGS, encoding_for
from tunelab.errors import ConfigError, is_number, positive_int, require
from tunelab.paths import processed_dir, training_corpora

# (cfg, runs) -> (figure, title, caption); raises tunelab.plotting.Skip when its runs are missing
FigureMaker = Callable[[DictConfig, dict], tuple[Any, str, str]]


@dataclass(frozen=True)
class Table:
    """A paper's comparison table: ``reports/tables/{name}.md`` and ``.json``."""

    name: str
    header: str  # Markdown title and source line(s)
    make: Callable[[Path, str], tuple[str, list[dict]]]  # (metrics dir, size label) -> (markdown, rows)


@dataclass(frozen=True)
class Built:
    """What training needs: the LightningModule, its data, and the vocabulary saved with the
    checkpoint."""

    module: L.LightningModule
    data: L.LightningDataModule
    vocab: list[str] = field(default_factory=list)


def run_metrics(metrics_dir: Path, run: str) -> dict | None:
    """reports/metrics/{run}.json, or None before the run is evaluated."""
    path = Path(metrics_dir) / f"{run}.json"
    return json.loads(path.read_text()) if path.is_file() else None


# network sizes that must be positive integers wherever a model config has them
_SIZES = ("hidden_size", "num_layers", "d_model", "num_heads", "d_ff", "z_size", "encoder_size",
          "decoder_size", "encoder_layers", "decoder_layers", "num_decoder_layers", "attn_length",
          "max_len", "width", "depth", "emb_width", "codebook_size")


def _first_line(e: Exception) -> str:
    """The summary line of an error, as the CLI prints it (``tunelab.cli.main``)."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def instantiate_section(cfg: DictConfig, section: str) -> Any:
    """``instantiate(cfg.model[section])``, a bad value named by its section in one line."""
    try:
        return instantiate(cfg.model[section])
    except (InstantiationException, TypeError, ValueError) as e:
        target = cfg.model[section].get("_target_")
        raise ConfigError(f"model.{section} ({target}): {_first_line(e.__cause__ or e)}") from None


def validate_trainable(cfg: DictConfig) -> None:
    """The values of ``model.net`` and ``model.optimizer`` a user most often gets wrong,
    checked before anything is built (Hydra would fail later with a traceback)."""
    net, opt = cfg.model.get("net") or {}, cfg.model.get("optimizer") or {}
    for key in _SIZES:
        if net.get(key) is not None:
            positive_int(cfg, f"model.net.{key}")
    if net.get("dropout") is not None:
        d = net.dropout
        require(is_number(d) and 0 <= d < 1, "model.net.dropout", d, "must be a probability in [0, 1)")
    if "lr" in opt:
        require(is_number(opt.lr) and opt.lr > 0, "model.optimizer.lr", opt.lr,
                "must be a positive number, e.g. 0.001")
    clip = cfg.model.get("clip_norm")
    require(clip is None or (isinstance(clip, int | float) and clip > 0), "model.clip_norm", clip,
            "must be a positive number or null (no clipping)")


class Family:
    """A model family over token sequences (the default); Jukebox overrides the lot."""

    name: str = ""
    docs: str = ""  # its page under docs/families/

    # --- configuration ---------------------------------------------------------------------
    def validate(self, cfg: DictConfig) -> None:
        """Check the model section; raise ConfigError naming the key."""
        for key in ("model.batch_size", "model.seq_len"):
            positive_int(cfg, key)
        require(cfg.model.encoding in ENCODINGS, "model.encoding", cfg.model.encoding,
                f"choose one of {', '.join(ENCODINGS)}")
        validate_trainable(cfg)

    # --- training --------------------------------------------------------------------------
    def check_net(self, cfg: DictConfig, net: torch.nn.Module, encoding: Any) -> None:
        """The network's sizes against the encoding's, before any step is taken."""
        if getattr(net, "token_inputs", False):
            if net.num_classes != len(encoding.vocab):
                raise ConfigError(f"model.net.num_classes={net.num_classes} but encoding "
                                  f"{cfg.model.encoding} has {len(encoding.vocab)} tokens")
        elif net.input_size != encoding.input_size or net.num_classes != len(encoding.vocab):
            raise ConfigError(
                f"model.net: input_size={net.input_size}, num_classes={net.num_classes} but encoding "
                f"{cfg.model.encoding} has {encoding.input_size} inputs and {len(encoding.vocab)} classes")

    def module_args(self, cfg: DictConfig, encoding: Any) -> dict[str, Any]:
        """Arguments of ``model.module`` that come from the encoding, not the config."""
        # Magenta's "no event" accuracy counts the label of NO_EVENT (0, except key-melody's);
        # it means nothing for other encodings.
        melody = cfg.model.encoding in MELODY_ENCODINGS
        return {"no_event_label": getattr(encoding, "default_event_label", 0) if melody else None}

    def build_module(self, cfg: DictConfig, encoding: Any) -> L.LightningModule:
        """``model.module`` around ``model.net`` and ``model.optimizer``.

        Raises:
            ConfigError: a value the class refuses, naming the config section.
        """
        net = instantiate_section(cfg, "net")
        self.check_net(cfg, net, encoding)
        module = instantiate_section(cfg, "module")
        optimizer = instantiate_section(cfg, "optimizer")
        try:
            return module(net=net, optimizer=optimizer, **self.module_args(cfg, encoding))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model.module ({cfg.model.module._target_}): {_first_line(e)}") from None

    def build(self, cfg: DictConfig) -> Built:
        """The module and the token windows it trains on (every corpus of a joint model)."""
        encoding = encoding_for(cfg, cfg.model.encoding)
        module = self.build_module(cfg, encoding)
        folders = [processed_dir(cfg, corpus=c) for c in training_corpora(cfg)]
        augment = cfg.model.get("augment")
        data = EventDataModule(folders, encoding, cfg.model.batch_size, cfg.model.seq_len, seed=cfg.seed,
                               net=module.net, augment=encoding.augmenter(**augment) if augment else None)
        return Built(module, data, list(encoding.vocab.tokens))

    # --- generation and evaluation -----------------------------------------------------------
    def load(self, cfg: DictConfig) -> tuple[torch.nn.Module, Any, str]:
        """The trained network, its encoding and the encoding's name."""
        return load_trained(cfg)

    def generate(self, cfg: DictConfig) -> list[Path]:
        """The sample stage: write ``samples/{run}/``; return the files."""
        raise NotImplementedError(f"family {self.name} generates nothing")

    def evaluate(self, cfg: DictConfig) -> dict:
        """The evaluate stage's metrics (the stage writes and logs them)."""
        raise NotImplementedError(f"family {self.name} has no evaluation")

    # --- the papers' figures and tables --------------------------------------------------------
    def figures(self) -> dict[str, FigureMaker]:
        return {}

    def tables(self) -> list[Table]:
        return []
