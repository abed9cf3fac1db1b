"""LightningModule for Jukebox's VQ-VAE: the loss of :class:`JukeboxVQVAE` (waveform L2 +
multispectral + commitment, summed over levels) with Jukebox's optimiser (Adam, lr 3e-4,
linear warm-up ``lr_warmup``; jukebox/train.py, hparams DEFAULTS["opt"])."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch

from tunelab.models.components.vqvae import JukeboxVQVAE

LOGGED = ("recons", "spectral", "commit", "perplexity", "used", "dead")


class VQVAEModule(L.LightningModule):
    """Trains a :class:`JukeboxVQVAE` on batches ``{"audio": (B, T)}``, ``T`` a multiple of the
    top level's hop.

    Args:
        net: The network.
        optimizer: ``params -> Optimizer`` (a ``functools.partial`` of Adam; Jukebox: lr 3e-4).
        warmup_steps: Linear learning-rate warm-up from 0 (Jukebox ``lr_warmup=100``); 0 = none.
    """

    def __init__(self, net: JukeboxVQVAE, optimizer: Callable[..., torch.optim.Optimizer],
                 warmup_steps: int = 0) -> None:
        super().__init__()
        self.net, self.optimizer_factory, self.warmup_steps = net, optimizer, warmup_steps

    def forward(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """Audio (B, T) -> codes of every level, finest first."""
        return self.net.encode(audio)

    def _step(self, audio: torch.Tensor, stage: str) -> torch.Tensor:
        # the codebooks update (EMA, restarts) only in training mode: Lightning's eval() in validation
        _, loss, metrics = self.net(audio)
        bs, sync = audio.shape[0], stage != "train"
        self.log(f"{stage}/loss", loss.detach(), prog_bar=True, batch_size=bs, sync_dist=sync)
        self.log_dict({f"{stage}/{name}_l{k}": metrics[f"{name}_l{k}"]
                       for k in range(self.net.levels) for name in LOGGED}, batch_size=bs, sync_dist=sync)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch["audio"], "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch["audio"], "val")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if not self.warmup_steps:
            return optimizer
        warmup = self.warmup_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, 1.0))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
