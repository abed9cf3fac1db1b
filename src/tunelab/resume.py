"""Resumable training: periodic full-state checkpoints and the data position they restore.

Spot instances die mid-epoch. At every validation (``trainer.val_check_interval`` steps) the
whole training state goes to ``{paths.checkpoints}/{run}/last.ckpt`` (Lightning's checkpoint:
weights, optimizer, LR scheduler, loop counters; plus the RNG states, the data loader's
position and the metrics logged so far). Rerunning the same command continues from it.

Exactness: the data loader records the RNG states at the start of each epoch and, on
resume, restores them and replays the batches already trained on (loading only, no model
work), so every later draw -- shuffling, random crops, augmentation -- repeats the
uninterrupted run's; the global RNGs (dropout, scheduled sampling) are restored too.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from tunelab.paths import run_name

log = logging.getLogger(__name__)
LAST = "last.ckpt"
# Keys that do not change what is trained: a checkpoint made under other values still resumes.
IGNORED_KEYS = ("resume", "paths", "logger", "sample", "evaluate", "report", "seconds", "style",
                "instruments", "pipeline", "encoding", "optimized_metric", "hparams_search",
                "trainer.log_every_n_steps")


def checkpoint_dir(cfg: DictConfig) -> Path:
    """Where a run keeps its resumable state; outside ``models/`` because DVC deletes a
    stage's outputs before rerunning it, and a spot run may point it at a mounted bucket."""
    return Path(cfg.paths.checkpoints) / run_name(cfg)


def _training_config(cfg: DictConfig | dict) -> dict:
    conf = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True) if not isinstance(cfg, dict) else cfg
    conf = {k: (dict(v) if isinstance(v, dict) else v) for k, v in conf.items()}
    for key in IGNORED_KEYS:
        head, _, leaf = key.partition(".")
        if leaf and isinstance(conf.get(head), dict):
            conf[head].pop(leaf, None)
        elif not leaf:
            conf.pop(head, None)
    return conf


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def find_resumable(cfg: DictConfig) -> Path | None:
    """The run's last checkpoint if ``resume`` is on and it was made with this training
    config; a checkpoint of another config is ignored (with a warning), never loaded."""
    path = checkpoint_dir(cfg) / LAST
    if not cfg.get("resume", True) or not path.is_file():
        return None
    try:
        # mmap: only the config is read, not gigabytes of weights and optimizer state
        saved = torch.load(path, map_location="cpu", weights_only=False, mmap=True)["tunelab"]["config"]
    except Exception as e:  # noqa: BLE001 -- an unreadable checkpoint is reported, then skipped
        log.warning("%s is unreadable (%s); training from scratch", path, e)
        return None
    diff = _differences(_training_config(saved), _training_config(cfg))
    if diff:
        log.warning("%s was made with another config (%s); training from scratch", path, ", ".join(diff[:5]))
        return None
    log.info("resuming from %s", path)
    return path


def rng_states() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    # plain types only: Lightning loads checkpoints with torch.load(weights_only=True)
    states = {"torch": torch.get_rng_state(), "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class PeriodicCheckpoint(L.Callback):
    """After every validation (each ``trainer.val_check_interval`` steps) the full training
    state goes to ``dirpath/last.ckpt``: written beside it, then renamed over it, so a kill
    never leaves a half-written checkpoint (Lightning's own save stages the file in the system
    temp folder and copies it in). Validation end is where Lightning's ModelCheckpoint saves
    too: the step's metrics are logged by then and the loops resume exactly from there."""

    def __init__(self, dirpath: Path, cfg: DictConfig) -> None:
        self.dirpath = Path(dirpath)
        self.config = OmegaConf.to_container(cfg, resolve=True)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.global_step < trainer.max_steps:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        part = self.dirpath / f"{LAST}.part"
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(part)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(part, self.dirpath / LAST)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        for lg in trainer.loggers:  # the curve so far travels with the state (rank 0 logs)
            if isinstance(lg, L.pytorch.loggers.CSVLogger) and trainer.is_global_zero:
                lg.save()
                path = Path(lg.experiment.metrics_file_path)
                checkpoint["tunelab_metrics_csv"] = path.read_text() if path.is_file() else ""
        checkpoint["tunelab"] = {"config": self.config, "rng": rng_states()}

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        set_rng_states(checkpoint["tunelab"]["rng"])
        for lg in trainer.loggers:
            if (isinstance(lg, L.pytorch.loggers.CSVLogger) and trainer.is_global_zero
                    and checkpoint.get("tunelab_metrics_csv")):
                writer = lg.experiment  # creating the writer clears its folder, so write after it
                text = checkpoint["tunelab_metrics_csv"]
                Path(writer.metrics_file_path).write_text(text)
                writer.metrics_keys = text.splitlines()[0].split(",")


def dataset_generators(dataset: Dataset) -> list[np.random.Generator]:
    """Every numpy Generator a dataset (or its window picker) draws from, in a fixed order."""
    found = []
    for obj in (dataset, getattr(dataset, "windows", None)):
        if obj is not None and hasattr(obj, "__dict__"):
            found += [v for _, v in sorted(vars(obj).items()) if isinstance(v, np.random.Generator)]
    return found


class ResumableLoader(DataLoader):
    """A training DataLoader whose position is part of Lightning's checkpoint (the
    ``state_dict``/``load_state_dict`` protocol Lightning calls on stateful loaders).

    ``batches_done`` reports how many batches of the current epoch the model has trained on
    (Lightning fetches one batch ahead, so the loader's own count would be one too many).
    Without a ``generator`` the shuffle draws from the global torch RNG, as a plain
    DataLoader does; its state at the epoch's start is kept instead.
    """

    def __init__(self, *args: Any, batches_done: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done
        self._epoch_start: dict | None = None
        self._restore: dict | None = None

    def _rng_state(self) -> dict:
        gen = self.generator.get_state() if self.generator is not None else torch.get_rng_state()
        dataset = [g.bit_generator.state for g in dataset_generators(self.dataset)]
        return {"generator": gen, "dataset": dataset}

    def _set_rng_state(self, state: dict) -> None:
        if self.generator is not None:
            self.generator.set_state(state["generator"])
        else:
            torch.set_rng_state(state["generator"])
        for g, s in zip(dataset_generators(self.dataset), state["dataset"], strict=True):
            g.bit_generator.state = s

    def __iter__(self) -> Iterator:
        restore, self._restore = self._restore, None
        if restore is None:
            self._epoch_start = self._rng_state()
            return super().__iter__()
        now = torch.get_rng_state()  # the global state the checkpoint restored
        self._set_rng_state(restore["epoch_start"])
        self._epoch_start = restore["epoch_start"]
        it = super().__iter__()
        for _ in range(restore["batches"]):  # replay: the same draws, no training
            next(it)
        if self.generator is None:
            torch.set_rng_state(now)
        if restore["batches"] >= len(self):
            # Saved on an epoch's last batch: Lightning finishes that epoch (it prefetches from
            # this iterator, then asks for the next epoch's), so hand it nothing; the next call
            # starts the new epoch from the RNG states the replay left, as the uninterrupted run did.
            return iter(())
        return it

    def state_dict(self) -> dict:
        done = self.batches_done() if self.batches_done is not None else 0
        return {"epoch_start": self._epoch_start, "batches": done}

    def load_state_dict(self, state: dict) -> None:
        self._restore = state


def trained_batches(module_or_data: Any) -> Callable[[], int]:
    """``batches_done`` for a loader made by a LightningDataModule (its trainer's progress)."""
    def done() -> int:
        return module_or_data.trainer.fit_loop.epoch_loop.batch_progress.current.processed
    return done
