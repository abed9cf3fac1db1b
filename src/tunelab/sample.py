"""The sample stage (`tunelab sample`, alias `generate`): MIDI from a trained model.

Token models (Music Transformer and its baseline) generate from a start token, or continue
a primer MIDI file (``sample.primer_midi``), with temperature, top-k and top-p and a
key/value cache; the tokens decode through the model's encoding to MIDI.

MelodyRNN generation follows Magenta's melody_rnn generator: the primer is squashed into the
model's range and key, the model's state is kept from step to step (the primer is fed
once, then one input row per new event), beam search picks among sampled branches, and
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

from tunelab.checkpoint import load_trained
from tunelab.config import ConfigError
from tunelab.corpora.download import atomic_dir
from tunelab.models.components.beam_search import beam_search
from tunelab.models.components.sampling import generate
from tunelab.music.constants import MELODY_NO_EVENT, MELODY_NOTE_OFF
from tunelab.music.melody import Melody, extract_melodies
from tunelab.music.midi_io import CorruptMidiError, read_midi, write_midi
from tunelab.music.score import Score
from tunelab.paths import samples_dir
from tunelab.tokenize import MELODY_ENCODINGS, MELODY_RANGE, decode_to_score, prepare_melody

log = logging.getLogger(__name__)


def read_primer(cfg: DictConfig) -> Score:
    """``sample.primer_midi`` as a score on the corpus grid.

    Raises:
        ConfigError: the file is missing or not readable MIDI.
    """
    path = Path(cfg.sample.primer_midi)
    try:
        return read_midi(path, cfg.corpus.steps_per_quarter)
    except (CorruptMidiError, OSError) as e:
        raise ConfigError(f"sample.primer_midi={path}: {e}") from None


def primer_melody(cfg: DictConfig, encoding_name: str, steps_per_bar: int) -> Melody:
    """The primer, in the model's range: a MIDI file's first melody (squashed, its
    transposition kept for undoing) or ``sample.primer_pitches`` as events, one per step.

    Raises:
        ConfigError: the primer file is missing, not MIDI or has no melody, or a primer
            pitch is outside the range.
    """
    lo, hi = MELODY_RANGE[encoding_name]
    if cfg.sample.primer_midi:
        path = Path(cfg.sample.primer_midi)
        score = read_primer(cfg)
        mels, _ = extract_melodies(score, min_bars=0, min_unique_pitches=1, max_steps_truncate=None,
                                   ignore_polyphonic_notes=True)
        if not mels:
            raise ConfigError(f"sample.primer_midi={path}: no melody in it (drums or empty)")
        mel = prepare_melody(mels[0], encoding_name, cfg.squash.transpose_to_key)
        if mel.transpose:
            log.warning("primer %s transposed by %+d semitones into the model's key and range "
                        "%d..%d; the output is transposed back", path, mel.transpose, lo, hi - 1)
        return replace(mel, steps_per_bar=steps_per_bar, start_step=0)
    events = tuple(int(p) for p in cfg.sample.primer_pitches)
    for p in events:
        if p not in (MELODY_NO_EVENT, MELODY_NOTE_OFF) and not lo <= p < hi:
            raise ConfigError(f"sample.primer_pitches: pitch {p} is outside the model's range "
                              f"{lo}..{hi - 1}; transpose it or use sample.primer_midi")
    if not events or events[0] < 0:
        raise ConfigError("sample.primer_pitches must start with a pitch")
    return Melody(events, steps_per_bar=steps_per_bar, steps_per_quarter=cfg.corpus.steps_per_quarter)


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
        log_probs = torch.log_softmax(h.logits / self.temperature, -1)
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


def primer_tokens(cfg: DictConfig, encoding: Any, name: str) -> np.ndarray:
    """Token ids a token model continues: melody encodings as :func:`primer_melody`, a
    performance from ``sample.primer_midi`` (all its tracks), else none (from scratch).

    Raises:
        ConfigError: the primer file is unreadable, or a primer MIDI for a grid encoding.
    """
    if name in MELODY_ENCODINGS:
        return np.asarray(encoding.encode(primer_melody(cfg, name, 4 * cfg.corpus.steps_per_quarter).events))
    if not cfg.sample.primer_midi:
        return np.zeros(0, dtype=np.int64)
    path = Path(cfg.sample.primer_midi)
    if name != "performance":
        raise ConfigError(f"sample.primer_midi={path}: priming a {name} model from MIDI is not "
                          "supported; use a performance or melody model")
    return np.asarray(encoding.encode(read_primer(cfg)))


def sample_tokens(cfg: DictConfig, net: torch.nn.Module, encoding: Any, name: str) -> list[Path]:
    """Generate ``sample.num_outputs`` pieces of ``sample.num_tokens`` new tokens in one
    batch; the primer's tokens are kept verbatim at the start of each."""
    s = cfg.sample
    primer = primer_tokens(cfg, encoding, name)
    prompt = torch.tensor([[net.bos, *primer.tolist()]]).repeat(s.num_outputs, 1)
    gen = torch.Generator().manual_seed(cfg.seed)
    log.info("generating %d x %d tokens after a %d-token primer", s.num_outputs, s.num_tokens, len(primer))
    tokens = generate(net, prompt, s.num_tokens, new_cache=net.new_cache, temperature=s.temperature,
                      top_k=s.top_k, top_p=s.top_p, greedy=s.greedy, generator=gen, progress=True)
    written = []
    with atomic_dir(samples_dir(cfg)) as out:
        for i, row in enumerate(tokens[:, 1:].numpy()):
            score = decode_to_score(name, encoding, row, f"{cfg.model.name}-{cfg.corpus.name}-{i:02d}")
            written.append(write_midi(score, out / f"sample_{i:02d}.mid"))
    return [samples_dir(cfg) / p.name for p in written]


def sample(cfg: DictConfig) -> list[Path]:
    """Write ``sample.num_outputs`` MIDI files to samples/{model}-{corpus}/ (Jukebox: WAV)."""
    if cfg.model.family == "jukebox":
        from tunelab.jukebox import sample_jukebox

        return sample_jukebox(cfg)
    net, encoding, name = load_trained(cfg)
    if cfg.model.family == "musenet":
        from tunelab.musenet import sample_musenet

        return sample_musenet(cfg, net, encoding)
    if cfg.model.family == "music_vae":
        from tunelab.music_vae import sample_music_vae

        return sample_music_vae(cfg, net, encoding)
    if cfg.model.family == "accompaniment":
        from tunelab.accompany import sample_accompaniments

        return sample_accompaniments(cfg, net, encoding)
    if getattr(net, "token_inputs", False):
        return sample_tokens(cfg, net, encoding, name)
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
