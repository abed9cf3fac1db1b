"""MelodyRNN generation, as Magenta's melody_rnn generator does it: the primer is squashed
into the model's range and key, the model's state is kept from step to step (the primer is
fed once, then one input row per new event), beam search picks among sampled branches, and
the result is transposed back to the primer's key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir
from tunelab.errors import ConfigError
from tunelab.families.sequence import primer_melody
from tunelab.models.components.beam_search import beam_search
from tunelab.models.components.sampling import scale_logits
from tunelab.music.midi_io import write_midi
from tunelab.paths import samples_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hypothesis:
    """One beam entry: labels and events so far, the model state after them, the logits
    for the next event, and the summed log-probability of the generated events."""

    labels: tuple[int, ...]
    events: tuple[int, ...]
    state: Any
    logits: torch.Tensor
    score: float = 0.0


class MelodyGenerator:
    """Extends melodies with a trained event network, keeping its recurrent state."""

    def __init__(self, net: torch.nn.Module, encoding: Any, temperature: float = 1.0,
                 greedy: bool = False, generator: torch.Generator | None = None) -> None:
        self.net, self.encoding = net.eval(), encoding
        self.temperature, self.greedy = temperature, greedy
        self.generator = generator or torch.Generator().manual_seed(0)

    def _features(self, events: tuple[int, ...], last_only: bool) -> torch.Tensor:
        feats = np.asarray(self.encoding.inputs(events), dtype=np.float32)
        return torch.from_numpy(feats[-1:] if last_only else feats)[None]  # (1, T, F)

    @torch.no_grad()
    def prime(self, events: tuple[int, ...]) -> Hypothesis:
        """Feed the whole primer once."""
        logits, state = self.net(self._features(events, last_only=False))
        return Hypothesis(tuple(int(x) for x in self.encoding.encode(events)), tuple(events), state,
                          logits[0, -1])

    @torch.no_grad()
    def step(self, h: Hypothesis) -> Hypothesis:
        """Choose the next event, then feed only its input row (state kept)."""
        log_probs = torch.log_softmax(scale_logits(h.logits, self.temperature), -1)
        if self.greedy:
            label = int(log_probs.argmax())
        else:
            label = int(torch.multinomial(log_probs.exp(), 1, generator=self.generator))
        labels = (*h.labels, label)
        events = tuple(self.encoding.decode(labels))  # lookback labels resolve against history
        logits, state = self.net(self._features(events, last_only=True), h.state)
        return Hypothesis(labels, events, state, logits[0, -1], h.score + float(log_probs[label]))

    def generate(self, primer: tuple[int, ...], num_steps: int, beam_size: int = 1,
                 branch_factor: int = 1, steps_per_iteration: int = 1) -> Hypothesis:
        """Extend ``primer`` to ``num_steps`` events in total (primer included)."""
        start = self.prime(primer)
        return beam_search(start, self.step, num_steps - len(primer), beam_size, branch_factor,
                           steps_per_iteration)


def total_steps(cfg: DictConfig, steps_per_bar: int) -> int:
    return cfg.sample.num_bars * steps_per_bar if cfg.sample.num_bars else cfg.sample.num_steps


def sample_melodies(cfg: DictConfig, net: torch.nn.Module, encoding: Any, name: str) -> list[Path]:
    """``sample.num_outputs`` melodies continuing the primer -> samples/{model}-{corpus}/."""
    spb = 4 * cfg.corpus.steps_per_quarter  # generated melodies are in 4/4
    primer = primer_melody(cfg, name, spb)
    num_steps = total_steps(cfg, spb)
    if num_steps <= len(primer):
        raise ConfigError(f"sample.num_steps={num_steps} leaves no room after the "
                          f"{len(primer)}-step primer")
    s = cfg.sample
    gen = MelodyGenerator(net, encoding, s.temperature, s.greedy, torch.Generator().manual_seed(cfg.seed))
    written = []
    with atomic_dir(samples_dir(cfg)) as out:
        for i in tqdm(range(s.num_outputs), desc="sample", unit="melody"):
            best = gen.generate(primer.events, num_steps, s.beam_size, s.branch_factor,
                                s.steps_per_iteration)
            mel = replace(primer, events=best.events, piece_id=f"{cfg.model.name}-{cfg.corpus.name}-{i:02d}")
            written.append(write_midi(mel.to_score(untranspose=True), out / f"sample_{i:02d}.mid"))
            log.info("sample %d: log-likelihood %.2f over %d generated steps", i, best.score,
                     num_steps - len(primer))
    return [samples_dir(cfg) / p.name for p in written]
