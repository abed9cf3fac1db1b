"""MuseNet-style model (OpenAI 2019): one dense-attention decoder over multi-instrument
event tokens, trained jointly on every corpus in ``styles`` and steered by a style token
and instrument tokens; evaluated per style and by a style classifier.

docs/families/musenet.md
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from tunelab.families.base import Family
from tunelab.families.musenet.evaluate import evaluate_musenet
from tunelab.families.musenet.generate import sample_musenet


class MuseNet(Family):
    name = "musenet"
    docs = "docs/families/musenet.md"

    def check_net(self, cfg: DictConfig, net: torch.nn.Module, encoding: Any) -> None:
        super().check_net(cfg, net, encoding)
        net.set_wait_steps(encoding.wait_steps)  # how far each token moves time (structural embeddings)

    def generate(self, cfg: DictConfig) -> list[Path]:
        net, encoding, _ = self.load(cfg)
        return sample_musenet(cfg, net, encoding)

    def evaluate(self, cfg: DictConfig) -> dict:
        net, encoding, _ = self.load(cfg)
        return evaluate_musenet(cfg, net, encoding)


FAMILY = MuseNet()
