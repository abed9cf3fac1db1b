"""When a run stops and which weights it keeps: early stopping on the validation loss and
the best validation checkpoint (what Lightning's ModelCheckpoint(save_top_k=1) keeps, held
in memory and in the resumable state instead of a second file)."""

from __future__ import annotations

import copy
import math

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from omegaconf import DictConfig

from tunelab.errors import ConfigError


class BestWeights(L.Callback):
    """Keeps a copy of ``module.net``'s weights at its lowest ``monitor`` value so far.

    Runs before the resumable checkpoint is written (put it first among the callbacks), and
    its state travels in that checkpoint, so a resumed run keeps the same best.
    """

    def __init__(self, monitor: str = "val/loss") -> None:
        self.monitor = monitor
        self.best = math.inf
        self.step: int | None = None
        self.weights: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if score < self.best:  # NaN never wins
            self.best, self.step = score, int(trainer.global_step)
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in module.net.state_dict().items()}

    def restore(self, module: L.LightningModule) -> bool:
        """Load the best weights into ``module.net``; False when no validation ran."""
        if self.weights is None:
            return False
        module.net.load_state_dict(self.weights)
        return True

    def state_dict(self) -> dict:
        return {"monitor": self.monitor, "best": self.best, "step": self.step,
                "weights": copy.copy(self.weights)}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.step, self.weights = state["best"], state["step"], state["weights"]


def early_stopping(cfg: DictConfig) -> EarlyStopping | None:
    """Lightning's EarlyStopping from ``trainer.early_stopping`` (patience counted in
    validations, i.e. every ``trainer.val_check_interval`` steps); None when patience is null."""
    es = cfg.trainer.get("early_stopping")
    if es is None or es.get("patience") is None:
        return None
    patience = es.patience
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ConfigError(f"trainer.early_stopping.patience={patience!r}: use a whole number "
                          ">= 1 (validations without improvement), or null to train every step")
    return EarlyStopping(monitor=es.get("monitor", "val/loss"), patience=patience,
                         min_delta=float(es.get("min_delta", 0.0)), mode="min", strict=False,
                         check_on_train_epoch_end=False, check_finite=True)
