"""Performance RNN (Simon & Oore 2017; Magenta's performance_rnn): a stacked LSTM over
performance events (note-on, note-off, 10 ms time shifts, velocity), trained per corpus,
sampled one event at a time from scratch or after a MIDI primer.

docs/families/performance_rnn.md
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tunelab.families.base import Family
from tunelab.families.sequence import evaluate_sequence_model, sample_tokens


class PerformanceRNN(Family):
    name = "performance_rnn"
    docs = "docs/families/performance_rnn.md"

    def generate(self, cfg: DictConfig) -> list[Path]:
        return sample_tokens(cfg, *self.load(cfg))

    def evaluate(self, cfg: DictConfig) -> dict:
        return evaluate_sequence_model(cfg, *self.load(cfg))


FAMILY = PerformanceRNN()
