"""The encoding registry: every encoding by name, its Magenta-style settings, and the
one way back from token ids to a score (for MIDI files and metrics)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from omegaconf import DictConfig

from tunelab.music.constants import SATB
from tunelab.music.melody import Melody, squash

# Pitch range [lo, hi) of each melody encoding, as in Magenta's melody_rnn configs.
MELODY_RANGE = {"melody_onehot": (48, 84), "melody_mono": (0, 128), "lookback": (48, 84),
                "key_melody": (48, 84)}
MELODY_ENCODINGS = tuple(MELODY_RANGE)
# MusicVAE windows: bars and parts of each (tunelab.encodings.music_vae).
VAE_ENCODINGS = {"mel_2bar": (2, 1), "mel_16bar": (16, 1), "trio_16bar": (16, 3)}
ENCODINGS = (*MELODY_ENCODINGS, "performance", "voice_grid", "voice_events", "musenet", *VAE_ENCODINGS)


def prepare_melody(melody: Melody, encoding: str, transpose_to_key: int | None) -> Melody:
    """Squash into the encoding's range (Magenta's EncoderPipeline); mono keeps its key."""
    lo, hi = MELODY_RANGE[encoding]
    return squash(melody, lo, hi, None if encoding == "melody_mono" else transpose_to_key)


def build_encoding(name: str, voices: Sequence[str] | None = None,
                   styles: Sequence[str] | None = None) -> Any:
    """The encoding object for a name in ENCODINGS (default Magenta sizes).

    Args:
        name: One of ENCODINGS.
        voices: The voice_events columns, melody first (:func:`accompaniment_voices`);
            None means SATB. Other encodings ignore it.
        styles: The musenet style tokens (``cfg.styles``); required for musenet, whose
            vocabulary size depends on them. Other encodings ignore it.
    """
    from tunelab import encodings as enc

    builders: dict[str, Callable[[], Any]] = {
        "melody_onehot": enc.MelodyOneHotEncoding,
        "melody_mono": lambda: enc.MelodyOneHotEncoding(0, 128),
        "lookback": enc.LookbackMelodyEncoding,
        "key_melody": enc.KeyMelodyEncoding,
        "performance": enc.PerformanceEncoding,
        "voice_grid": enc.VoiceGridEncoding,
        "voice_events": lambda: enc.VoiceEventsEncoding(SATB if voices is None else voices),
        "musenet": lambda: enc.MuseNetEncoding(_require_styles(styles)),
        **{vae: (lambda bars=bars, parts=parts: enc.MusicVAEEncoding(
            bars, enc.TRIO_PARTS if parts > 1 else ("melody",)))
           for vae, (bars, parts) in VAE_ENCODINGS.items()},
    }
    if name not in builders:
        raise KeyError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")
    return builders[name]()


def _require_styles(styles: Sequence[str] | None) -> Sequence[str]:
    if styles is None:
        raise ValueError("the musenet encoding needs styles: build_encoding('musenet', styles=cfg.styles)")
    return list(styles)


def accompaniment_voices(cfg: DictConfig) -> tuple[str, ...]:
    """The corpus's melody track then its accompaniment parts, as voice_events columns.

    Raises:
        ValueError: the corpus sets no ``accompaniment``.
    """
    acc = corpus_roles(cfg, "accompaniment", "the voice_events encoding needs "
                       "{melody: <track>, parts: [<track>, ...]}")
    return (acc.melody, *acc.parts)


def corpus_roles(cfg: DictConfig, key: str, needs: str) -> Any:
    """``cfg.corpus[key]``, the tracks a multi-part encoding reads.

    Raises:
        ValueError: the corpus sets it to null; the message says what ``needs`` it.
    """
    value = cfg.corpus.get(key)
    if value is None:
        raise ValueError(f"corpus.{cfg.corpus.name}.{key} is null: {needs}")
    return value


def encoding_for(cfg: DictConfig, name: str) -> Any:
    """:func:`build_encoding` with the corpus's voices or the configured styles where the
    encoding needs them."""
    if name == "musenet":
        return build_encoding(name, styles=list(cfg.styles))
    return build_encoding(name, accompaniment_voices(cfg) if name == "voice_events" else None)


def decode_to_score(name: str, encoding: Any, labels: Sequence[int] | np.ndarray,
                    score_id: str = "decoded") -> Any:
    """The :class:`~tunelab.music.score.Score` of token ids of encoding ``name``, for MIDI
    files and metrics. An incomplete last row of a voice grid is dropped."""
    from tunelab import encodings as enc

    labels = np.asarray(labels, dtype=np.int64)
    if name in MELODY_ENCODINGS:
        events = tuple(int(e) for e in encoding.decode(labels))
        return Melody(events, piece_id=score_id).to_score()
    if name in ("performance", "musenet"):
        return encoding.decode(labels, score_id=score_id)
    if name in VAE_ENCODINGS:
        return encoding.to_score(labels, score_id=score_id)
    if name == "voice_grid":
        rows = len(labels) // encoding.num_voices * encoding.num_voices
        return enc.grid_to_score(encoding.decode(labels[:rows]), score_id=score_id)
    if name == "voice_events":
        return enc.voice_events_to_score(encoding.decode(labels), encoding.voices, score_id=score_id)
    raise KeyError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")


def trio_voices(cfg: DictConfig) -> tuple[str, ...]:
    """The corpus's melody, bass and harmony tracks for the trio (``chords``: a line of
    chord tones from the chord symbols).

    Raises:
        ValueError: the corpus sets no ``trio``.
    """
    return tuple(corpus_roles(cfg, "trio", "the trio_16bar encoding needs "
                              "[<melody track>, <bass track>, <harmony track or chords>]"))


def musenet_style(cfg: DictConfig) -> str:
    """The corpus's musenet style token: its name, which must be one of ``cfg.styles``."""
    name, styles = cfg.corpus.name, list(cfg.styles)
    if name not in styles:
        raise ValueError(f"corpus {name} is not in styles=[{','.join(styles)}]; "
                         f"add it: styles=[{','.join([*styles, name])}]")
    return name
