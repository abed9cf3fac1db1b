"""Melody-conditioned accompaniment with the Music Transformer encoder-decoder: the sample
stage for ``model=music_transformer_accompaniment`` (accompany the test melodies) and
``tunelab accompany melody.mid`` (accompany any MIDI melody).

The melody voice and the generated parts are written as separate tracks of one MIDI file,
named after the corpus's voices (Bach: S with A, T, B; jazz: solo with bass).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir
from tunelab.checkpoint import load_trained
from tunelab.datamodule import load_split
from tunelab.encodings import VoiceEventsEncoding, score_to_voice_events, voice_events_to_score
from tunelab.errors import ConfigError
from tunelab.models.components.sampling import generate
from tunelab.music.midi_io import CorruptMidiError, read_midi, write_midi
from tunelab.music.score import Score
from tunelab.paths import processed_dir, samples_dir

log = logging.getLogger(__name__)


def accompany_melody(net: torch.nn.Module, encoding: VoiceEventsEncoding, melody: np.ndarray, *,
                     temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                     greedy: bool = False, generator: torch.Generator | None = None) -> np.ndarray:
    """Melody labels (T,) -> the full step-major grid labels (T, 1 + parts), melody first."""
    source = torch.as_tensor(melody, dtype=torch.long)[None]
    with torch.no_grad():
        memory = net.encode(source)
    parts = net.num_parts
    tokens = generate(lambda t, c: net.decode(t, memory, c), torch.tensor([[net.bos]]), len(melody) * parts,
                      new_cache=net.new_cache, temperature=temperature, top_k=top_k, top_p=top_p,
                      greedy=greedy, generator=generator, progress=True)
    return np.concatenate([np.asarray(melody)[:, None], tokens[0, 1:].numpy().reshape(-1, parts)], 1)


def _settings(cfg: DictConfig) -> dict:
    s = cfg.sample
    return {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "greedy": s.greedy,
            "generator": torch.Generator().manual_seed(cfg.seed)}


def sample_accompaniments(cfg: DictConfig, net: torch.nn.Module, encoding: VoiceEventsEncoding) -> list[Path]:
    """Accompany the melodies of the first ``sample.num_outputs`` test pieces (cut to
    ``sample.num_steps`` steps) -> samples/{model}-{corpus}/sample_NN.mid."""
    pieces = load_split(processed_dir(cfg), "test")[:cfg.sample.num_outputs]
    if not pieces:
        raise FileNotFoundError(f"{processed_dir(cfg)}: the test split has no pieces to accompany")
    settings, written = _settings(cfg), []
    with atomic_dir(samples_dir(cfg)) as out:
        for i, labels in enumerate(tqdm(pieces, desc="accompany", unit="piece")):
            melody = labels.reshape(-1, encoding.num_voices)[:cfg.sample.num_steps, 0]
            grid = encoding.decode(accompany_melody(net, encoding, melody, **settings).reshape(-1))
            score = voice_events_to_score(grid, encoding.voices, score_id=f"{cfg.model.name}-{i:02d}")
            written.append(write_midi(score, out / f"sample_{i:02d}.mid"))
    return [samples_dir(cfg) / p.name for p in written]


def melody_track(score: Score, track: str | None) -> str:
    """The named track, or the first pitched track with notes."""
    names = [t.name for t in score.tracks if t.notes and not t.is_drum]
    if track is not None:
        if track not in [t.name for t in score.tracks]:
            raise ConfigError(f"--track {track}: no such track; the file has {names}")
        return track
    if not names:
        raise ConfigError(f"{score.source or score.id}: no pitched track to accompany")
    return names[0]


def accompany(cfg: DictConfig, melody_path: Path, out_path: Path | None = None,
              track: str | None = None) -> Path:
    """Write ``melody_path``'s melody plus generated parts as one multi-track MIDI file.

    Raises:
        ConfigError: the file is not readable MIDI or has no usable track.
    """
    net, encoding, _ = load_trained(cfg)
    try:
        score = read_midi(melody_path, cfg.corpus.steps_per_quarter)
    except (CorruptMidiError, OSError) as e:
        raise ConfigError(f"{melody_path}: {e}") from None
    name = melody_track(score, track)
    events = score_to_voice_events(score, [name])  # highest of simultaneous onsets kept
    melody = VoiceEventsEncoding([name]).encode(events)
    log.info("accompanying track %r of %s: %d steps -> %s", name, melody_path, len(melody),
             ", ".join(encoding.voices[1:]))
    grid = encoding.decode(accompany_melody(net, encoding, melody, **_settings(cfg)).reshape(-1))
    voices = [name, *encoding.voices[1:]]
    out = voice_events_to_score(grid, voices, score_id=Path(melody_path).stem, qpm=score.qpm)
    melody_path = Path(melody_path)
    out_path = Path(out_path) if out_path else melody_path.with_name(f"{melody_path.stem}_accompanied.mid")
    return write_midi(out, out_path)
