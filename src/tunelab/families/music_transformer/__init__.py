"""Music Transformer (Huang et al. 2019): relative self-attention with the skewing trick,
its vanilla baseline and a local variant; performance generation, melody continuation
(``model.task: generate``) and melody-conditioned accompaniment (``task: accompaniment``,
an encoder-decoder).

docs/families/music_transformer.md
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tunelab.errors import require
from tunelab.families.base import Family, FigureMaker, Table
from tunelab.families.music_transformer.accompany import sample_accompaniments
from tunelab.families.music_transformer.figures import music_transformer_nll, skewing_memory
from tunelab.families.music_transformer.tables import JSB_TABLE
from tunelab.families.sequence import evaluate_sequence_model, sample_tokens

TASKS = ("generate", "accompaniment")


def task(cfg: DictConfig) -> str:
    return cfg.model.get("task", "generate")


class MusicTransformer(Family):
    name = "music_transformer"
    docs = "docs/families/music_transformer.md"

    def validate(self, cfg: DictConfig) -> None:
        super().validate(cfg)
        require(task(cfg) in TASKS, "model.task", task(cfg), f"choose one of {', '.join(TASKS)}")
        if task(cfg) == "accompaniment":
            require(cfg.corpus.get("accompaniment") is not None, f"corpus.{cfg.corpus.name}.accompaniment",
                    None, "this corpus names no melody and accompaniment voices; "
                    "use corpus=bach, jazz or jsb")

    def generate(self, cfg: DictConfig) -> list[Path]:
        net, encoding, name = self.load(cfg)
        if task(cfg) == "accompaniment":
            return sample_accompaniments(cfg, net, encoding)
        return sample_tokens(cfg, net, encoding, name)

    def evaluate(self, cfg: DictConfig) -> dict:
        # an n-gram over melody + parts would see the melody it is given
        return evaluate_sequence_model(cfg, *self.load(cfg), baseline=task(cfg) != "accompaniment")

    def figures(self) -> dict[str, FigureMaker]:
        return {"music_transformer_jsb_nll": music_transformer_nll, "skewing_memory": skewing_memory}

    def tables(self) -> list[Table]:
        return [JSB_TABLE]


FAMILY = MusicTransformer()
