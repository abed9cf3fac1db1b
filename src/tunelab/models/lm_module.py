"""LightningModule for next-event language models: any network that maps a batch's
fields other than ``labels`` (``inputs``, and ``source``/``source_mask`` for an
encoder-decoder) to logits -- MelodyRNN, Music Transformer."""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from tunelab.models.components.tf_init import clip_per_variable_, tf_variables

IGNORE = -100  # label of padding steps
CLIP_MODES = ("global", "per_variable")
LR_SCHEDULES = ("warmup_cosine", "constant")


class EventLMModule(L.LightningModule):
    """Trains ``net`` with cross-entropy on next-event labels; logs Magenta's metrics.

    Batches are dicts with ``inputs`` (B, T, F) float features and ``labels`` (B, T) long
    targets, padding marked ``-100``.
    """

    def __init__(self, net: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 no_event_label: int | None = 0, warmup_steps: int = 0,
                 clip_mode: str = "global", lr_schedule: str = "warmup_cosine") -> None:
        super().__init__()
        if clip_mode not in CLIP_MODES:
            raise ValueError(f"model.module.clip_mode={clip_mode!r}; choose one of {', '.join(CLIP_MODES)}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"model.module.lr_schedule={lr_schedule!r}; "
                             f"choose one of {', '.join(LR_SCHEDULES)}")
        self.lr_schedule = lr_schedule
        self.net = net
        self.optimizer_factory = optimizer
        self.no_event_label = no_event_label
        self.warmup_steps = warmup_steps
        self.clip_mode = clip_mode

    def forward(self, batch: dict) -> torch.Tensor:
        return net_logits(self.net, batch)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        logits = self(batch)  # (B, T, C)
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

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer,
                                    gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """``model.clip_norm`` as one global norm, or per TF variable as Magenta's
        events_rnn_graph does (``create_train_op(clip_gradient_norm=...)``)."""
        if self.clip_mode == "per_variable" and gradient_clip_val:
            clip_per_variable_(tf_variables(self.net.named_parameters()), gradient_clip_val)
        else:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_schedule == "constant":  # Magenta's MelodyRNN / Performance RNN: Adam at one rate
            return optimizer
        # Linear warm-up, then cosine decay to 10% by the last step (nanoGPT).
        total = max(self.trainer.max_steps, self.warmup_steps + 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_cosine(s, self.warmup_steps, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.1) -> float:
    """Learning-rate factor: linear 0 -> 1 over ``warmup`` steps, cosine 1 -> ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup  # warmup 0 never enters: pure cosine
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def net_logits(net: nn.Module, batch: dict) -> torch.Tensor:
    """Logits (B, T, C) of ``net`` on a collated batch (every field but the labels)."""
    return net(**{k: v for k, v in batch.items() if k != "labels"})[0]


@torch.no_grad()
def summed_nll(net: nn.Module, batch: dict) -> tuple[float, int]:
    """Summed NLL in nats of ``net`` over a batch's non-padding steps, and their number."""
    logits = net_logits(net, batch)
    labels = batch["labels"]
    total = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum")
    return float(total), int((labels != IGNORE).sum())
