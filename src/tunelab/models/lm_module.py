"""LightningModule for next-event language models (MelodyRNN today; any family that maps
(inputs, labels) batches to logits)."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100  # label of padding steps


class EventLMModule(L.LightningModule):
    """Trains ``net`` with cross-entropy on next-event labels; logs Magenta's metrics.

    Batches are dicts with ``inputs`` (B, T, F) float features and ``labels`` (B, T) long
    targets, padding marked ``-100``.
    """

    def __init__(self, net: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 no_event_label: int | None = 0) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.no_event_label = no_event_label

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)[0]

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch["inputs"])  # (B, T, C)
        labels = batch["labels"]  # (B, T)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        mask = labels != IGNORE
        n = mask.sum()
        pred = logits.argmax(-1)
        correct = (pred == labels) & mask
        metrics = {f"{stage}/loss": loss, f"{stage}/accuracy": correct.sum() / n.clamp(min=1),
                   f"{stage}/perplexity": torch.exp(loss.detach())}
        if self.no_event_label is not None:
            # Magenta splits accuracy into steps that start an event vs steps that hold.
            ev = mask & (labels != self.no_event_label)
            no_ev = mask & (labels == self.no_event_label)
            metrics[f"{stage}/event_accuracy"] = (correct & ev).sum() / ev.sum().clamp(min=1)
            metrics[f"{stage}/no_event_accuracy"] = (correct & no_ev).sum() / no_ev.sum().clamp(min=1)
        bs = labels.shape[0]
        self.log_dict(metrics, prog_bar=stage != "train", batch_size=bs, sync_dist=stage != "train")
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())


@torch.no_grad()
def summed_nll(net: nn.Module, batch: dict) -> tuple[float, int]:
    """Summed NLL in nats of ``net`` over a batch's non-padding steps, and their number."""
    logits = net(batch["inputs"])[0]
    labels = batch["labels"]
    total = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum")
    return float(total), int((labels != IGNORE).sum())
