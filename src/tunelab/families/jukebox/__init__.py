"""Jukebox (Dhariwal et al. 2020), reduced to CPU size: raw audio of each corpus (rendered
by ``tunelab render_audio``), a multi-level VQ-VAE, a style-conditioned top-level prior and
upsamplers; generation runs the priors coarse to fine and decodes the finest codes.

Its model configs carry ``model.stage``: vqvae and prior train, generate assembles the parts.

docs/families/jukebox.md
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tunelab.errors import ConfigError, positive_int
from tunelab.families.base import Built, Family, validate_trainable
from tunelab.families.jukebox.jukebox import evaluate_jukebox, sample_jukebox, training_setup

STAGES = ("vqvae", "prior", "generate")


class Jukebox(Family):
    name = "jukebox"
    docs = "docs/families/jukebox.md"

    def validate(self, cfg: DictConfig) -> None:
        stage = cfg.model.get("stage")
        if stage not in STAGES:
            raise ConfigError(f"model.stage={stage}: choose one of {', '.join(STAGES)}")
        if stage != "generate":  # the assembled Jukebox trains nothing itself
            for key in ("model.batch_size", "model.seq_len"):
                positive_int(cfg, key)
            validate_trainable(cfg)
        # no model.encoding: Jukebox models raw audio, not tokens

    def build(self, cfg: DictConfig) -> Built:
        module, data = training_setup(cfg)
        return Built(module, data, list(cfg.model.corpora))  # the style ids are its only vocabulary

    def generate(self, cfg: DictConfig) -> list[Path]:
        return sample_jukebox(cfg)

    def evaluate(self, cfg: DictConfig) -> dict:
        return evaluate_jukebox(cfg)


FAMILY = Jukebox()
