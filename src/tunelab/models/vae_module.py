"""LightningModule for MusicVAE: reconstruction summed over steps plus a beta-weighted,
free-bits-thresholded KL, as magenta/models/music_vae/base_model.py
(``MusicVAE._compute_model_loss``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F

from tunelab.models.components.music_vae import MusicVAE

SAMPLING_SCHEDULES = ("constant", "inverse_sigmoid", "exponential")


def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) in nats, summed over z: one value per row."""
    return (0.5 * (mu.pow(2) + sigma.pow(2) - 1.0) - torch.log(sigma)).sum(-1)


def kl_cost(kl: torch.Tensor, free_bits: float) -> torch.Tensor:
    """``max(KL - free_bits * ln 2, 0)``: free bits is a budget over the whole of z."""
    return torch.clamp(kl - free_bits * math.log(2.0), min=0.0)


def beta_at(step: int, max_beta: float, beta_rate: float) -> float:
    """KL weight ``(1 - beta_rate ** step) * max_beta``; beta_rate 0 keeps it constant."""
    return (1.0 - beta_rate ** step) * max_beta


def sampling_probability_at(step: int, schedule: str, rate: float) -> float:
    """Scheduled-sampling probability (lstm_utils.get_sampling_probability)."""
    if schedule == "constant":
        return rate
    if schedule == "inverse_sigmoid":  # 1 - k / (k + exp(step / k))
        return 1.0 - rate / (rate + math.exp(min(step / rate, 700.0)))
    if schedule == "exponential":
        return 1.0 - rate ** step
    raise ValueError(f"sampling_schedule={schedule!r}; choose one of {', '.join(SAMPLING_SCHEDULES)}")


def eval_sampling_probability(schedule: str | None, rate: float) -> float:
    """The sampling probability away from training: 0 (teacher forcing) without a schedule
    or with a constant 0, otherwise a constant 1 -- every step after a segment's first is
    fed a sample of the decoder's own previous output."""
    # magenta/models/music_vae/lstm_utils.py get_sampling_probability(is_training=False)
    return 0.0 if not schedule or (schedule == "constant" and rate == 0) else 1.0


def reconstruction_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats) summed over steps and parts: one value per window."""
    ce = F.cross_entropy(logits.flatten(0, -2), labels.flatten(), reduction="none")
    return ce.view(labels.shape[0], -1).sum(-1)


class MusicVAEModule(L.LightningModule):
    """Trains a :class:`MusicVAE` on batches ``{"labels": (B, T, P)}``.

    Args:
        net: The network.
        optimizer: ``params -> Optimizer`` (Adam in Magenta).
        max_beta, beta_rate: KL weight and its annealing (:func:`beta_at`).
        free_bits: KL budget in bits over z that costs nothing.
        sampling_schedule, sampling_rate: Scheduled sampling (:func:`sampling_probability_at`)
            in training; validation decodes with :func:`eval_sampling_probability` (1 for
            any schedule but a constant 0), as Magenta's eval job does.
        lr_decay, min_lr: Magenta's per-step exponential decay
            ``(lr - min_lr) * lr_decay ** step + min_lr``.
    """

    def __init__(self, net: MusicVAE, optimizer: Callable[..., torch.optim.Optimizer],
                 max_beta: float = 0.2, beta_rate: float = 0.0, free_bits: float = 0.0,
                 sampling_schedule: str = "constant", sampling_rate: float = 0.0,
                 lr_decay: float = 1.0, min_lr: float = 0.0) -> None:
        super().__init__()
        sampling_probability_at(0, sampling_schedule, sampling_rate)  # a bad schedule fails here
        self.net, self.optimizer_factory = net, optimizer
        self.max_beta, self.beta_rate, self.free_bits = max_beta, beta_rate, free_bits
        self.sampling_schedule, self.sampling_rate = sampling_schedule, sampling_rate
        self.lr_decay, self.min_lr = lr_decay, min_lr

    def _terms(self, logits: torch.Tensor, labels: torch.Tensor, kl: torch.Tensor, beta: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The loss, per-window reconstruction NLL and step accuracy of decoder logits."""
        r_loss = reconstruction_nll(logits, labels)
        loss = r_loss.mean() + beta * kl_cost(kl, self.free_bits).mean()
        return loss, r_loss, (logits.argmax(-1) == labels).float().mean()

    def _step(self, labels: torch.Tensor, stage: str, sampling_probability: float) -> torch.Tensor:
        """Loss of a batch with z ~ q(z|x), decoded with ``sampling_probability``; logs
        ``{stage}/loss, r_loss, kl_bits, elbo, accuracy``. With p > 0 the validation loss,
        r_loss and accuracy are of that decode, and ``{stage}/*_teacher_forced`` and the ELBO
        (a likelihood only with teacher forcing) come from a teacher-forced decode of the
        same z."""
        mu, sigma = self.net.encode(labels)
        z = mu + sigma * torch.randn_like(sigma)  # as MusicVAE.forward: the same draws
        logits = self.net.reconstruct(labels, z, sampling_probability)
        kl = kl_divergence(mu, sigma)
        beta = beta_at(self.global_step, self.max_beta, self.beta_rate)
        loss, r_loss, accuracy = self._terms(logits, labels, kl, beta)
        metrics = {f"{stage}/loss": loss, f"{stage}/r_loss": r_loss.mean(),
                   f"{stage}/kl_bits": kl.mean() / math.log(2.0), f"{stage}/accuracy": accuracy}
        extra, teacher_r_loss = {}, r_loss
        if stage == "train":
            extra = {"train/kl_beta": beta, "train/sampling_probability": sampling_probability}
        elif sampling_probability > 0.0:
            teacher = self.net.reconstruct(labels, z)
            tf_loss, teacher_r_loss, tf_accuracy = self._terms(teacher, labels, kl, beta)
            extra = {f"{stage}/sampling_probability": sampling_probability,
                     f"{stage}/loss_teacher_forced": tf_loss,
                     f"{stage}/r_loss_teacher_forced": teacher_r_loss.mean(),
                     f"{stage}/accuracy_teacher_forced": tf_accuracy}
        metrics[f"{stage}/elbo"] = -(teacher_r_loss + kl).mean()
        sync = stage != "train"
        self.log_dict(metrics, prog_bar=sync, batch_size=labels.shape[0], sync_dist=sync)
        self.log_dict(extra, batch_size=labels.shape[0], sync_dist=sync)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        p = sampling_probability_at(self.global_step, self.sampling_schedule, self.sampling_rate)
        return self._step(batch["labels"], "train", p)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        # Magenta evaluates a scheduled-sampling model with p = 1 (eval_sampling_probability):
        # val/loss is then of the decoder fed its own samples, and *_teacher_forced beside it.
        p = eval_sampling_probability(self.sampling_schedule, self.sampling_rate)
        self._step(batch["labels"], "val", p)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.lr_decay >= 1.0:
            return optimizer
        lr0 = optimizer.param_groups[0]["lr"]
        floor = min(self.min_lr / lr0, 1.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: (1 - floor) * self.lr_decay ** s + floor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
