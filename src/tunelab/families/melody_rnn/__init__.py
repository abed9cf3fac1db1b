"""MelodyRNN (Magenta's melody_rnn: basic, mono, lookback, attention): LSTMs over one-hot
melody events, trained per corpus, generating with beam search from a primer.

docs/families/melody_rnn.md
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tunelab.families.base import Family
from tunelab.families.melody_rnn.generate import sample_melodies
from tunelab.families.sequence import evaluate_sequence_model


class MelodyRNN(Family):
    name = "melody_rnn"
    docs = "docs/families/melody_rnn.md"

    def generate(self, cfg: DictConfig) -> list[Path]:
        return sample_melodies(cfg, *self.load(cfg))

    def evaluate(self, cfg: DictConfig) -> dict:
        return evaluate_sequence_model(cfg, *self.load(cfg))


FAMILY = MelodyRNN()
