"""Per-voice melody events for melody -> accompaniment models (the Music Transformer's
accompaniment mode, Huang et al. 2018): the first voice is the melody, the rest the parts.

A grid is an int array ``(T, V)`` on 16th-note steps whose column ``v`` is voice ``v`` as a
Magenta melody-event list: a pitch ``>= 0`` strikes a note, ``NOTE_OFF`` (-1) ends the
sounding one, ``NO_EVENT`` (-2) holds whatever is (or isn't) sounding. Unlike
:mod:`tunelab.encodings.voice_grid` a held note (``60, NO_EVENT``) and a re-struck one
(``60, 60``) stay apart. Tokens serialize the grid row by row (t0: v0 v1 ..., t1: v0 v1
...) with the 130 classes of ``MelodyOneHotEncoding(0, 128)`` (0 NO_EVENT, 1 NOTE_OFF,
``2 + p`` onset of pitch ``p``).

Each voice is read as :func:`tunelab.music.melody.melody_from_track` reads a track with
``ignore_polyphonic_notes=True``: of notes sharing an onset the highest is kept and a later
onset cuts an earlier note (a drum track or a velocity-0 note reads as silence); but over
the whole track from step 0 (no gap splitting, no bar alignment), so column step ``t`` is
score step ``t``.

Canonical form. ``decode(encode(grid)) == grid`` for every grid of valid events, and
:func:`voice_events_to_score` accepts any; ``score_to_voice_events(voice_events_to_score(grid))
== grid`` exactly when the grid is canonical, as every :func:`score_to_voice_events` output is:

* ``T`` is the end of the last note: some voice sounds in the last row. Trailing rows where
  every voice is silent (e.g. a last row of ``NOTE_OFF``) come back dropped;
* a ``NOTE_OFF`` only ends a sounding note (one while the voice is silent comes back as
  ``NO_EVENT``); a note that lasts to row ``T - 1`` needs none.

The T of a score is thus the last note end over the voices after cutting, which is the last
note end over the tracks unless that note was cut by a later onset (or lost a same-onset tie).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tunelab.encodings.melody_onehot import MelodyOneHotEncoding
from tunelab.encodings.vocab import Vocab
from tunelab.music.constants import (
    DEFAULT_QPM,
    DEFAULT_VELOCITY,
    MAX_MIDI_PITCH,
    MELODY_NO_EVENT,
    MELODY_NOTE_OFF,
    MIN_MIDI_PITCH,
    SATB,
)
from tunelab.music.melody import Melody, melody_from_track
from tunelab.music.score import Score, Track

EVENTS_STEPS_PER_QUARTER = 4


def _check_grid(grid: np.ndarray, num_voices: int) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.int64)
    if grid.ndim != 2 or grid.shape[1] != num_voices:
        raise ValueError(f"grid of shape {grid.shape} is not (T, {num_voices})")
    if ((grid < MELODY_NO_EVENT) | (grid > MAX_MIDI_PITCH)).any():
        raise ValueError("grid values must be melody events: pitches 0..127, -1 NOTE_OFF, -2 NO_EVENT")
    return grid


def score_to_voice_events(score: Score, voices: Sequence[str] = SATB) -> np.ndarray:
    """One melody-event column per named track, all on the score's own steps.

    Args:
        score: A score at 4 steps per quarter with a track per voice.
        voices: Track names, one column each; the melody first.

    Returns:
        int64 array ``(T, len(voices))`` in the canonical form of the module docstring.

    Raises:
        ValueError: ``score.steps_per_quarter != 4``.
        KeyError: a voice has no track.
    """
    if score.steps_per_quarter != EVENTS_STEPS_PER_QUARTER:
        raise ValueError(
            f"score {score.id} is at {score.steps_per_quarter} steps per quarter; voice events "
            f"need {EVENTS_STEPS_PER_QUARTER} (16th notes)"
        )
    # A one-step bar and an infinite gap make melody_from_track start at the first note and
    # read the whole track; it drops the trailing NOTE_OFF, which the padding below restores.
    lines = [
        melody_from_track(score.track(v), bar_steps=1, gap_bars=math.inf, ignore_polyphonic_notes=True)
        for v in voices
    ]
    num_steps = max((start + len(events) for events, start in lines if events), default=0)
    grid = np.full((num_steps, len(voices)), MELODY_NO_EVENT, dtype=np.int64)
    for col, (events, start) in enumerate(lines):
        end = start + len(events)
        grid[start:end, col] = events
        if events and end < num_steps:
            grid[end, col] = MELODY_NOTE_OFF  # the voice's last note ends at `end`
    return grid


def voice_events_to_score(
    grid: np.ndarray,
    voices: Sequence[str] = SATB,
    score_id: str = "voice_events",
    qpm: float = DEFAULT_QPM,
    velocity: int = DEFAULT_VELOCITY,
) -> Score:
    """A score with one track per column, named after its voice.

    A note runs from its onset to the next onset or ``NOTE_OFF`` of its voice, or to the
    end of the grid (as :meth:`Melody.to_notes`).

    Args:
        grid: int array ``(T, V)`` of melody events.
        voices: Track names, one per column.
        score_id: The score's id.
        qpm: Tempo.
        velocity: Velocity of every note (events carry none).

    Raises:
        ValueError: the grid's shape does not match ``voices`` or holds invalid events.
    """
    grid = _check_grid(grid, len(voices))
    tracks = tuple(
        Track(name, tuple(Melody(tuple(int(e) for e in grid[:, col])).to_notes(velocity)))
        for col, name in enumerate(voices)
    )
    return Score(id=score_id, tracks=tracks, steps_per_quarter=EVENTS_STEPS_PER_QUARTER, qpm=qpm)


# Mirrors the Music Transformer's accompaniment serialization with Magenta's mono_rnn classes.
class VoiceEventsEncoding:
    """Grid <-> tokens, one melody-event token per voice per step, in row-major order."""

    name = "voice_events"

    def __init__(self, voices: Sequence[str] = SATB) -> None:
        """Configures the encoding.

        Args:
            voices: Track names, one grid column each; the first is the melody.

        Raises:
            ValueError: no voices, or a voice named twice.
        """
        self.voices = tuple(voices)
        if not self.voices or len(set(self.voices)) != len(self.voices):
            raise ValueError(f"voices must be distinct names, at least one: {self.voices}")
        # The per-event classes and vocab of Magenta's mono_rnn, shared rather than redefined.
        self._events = MelodyOneHotEncoding(MIN_MIDI_PITCH, MAX_MIDI_PITCH + 1)

    @property
    def num_voices(self) -> int:
        return len(self.voices)

    @property
    def num_classes(self) -> int:
        return self._events.num_classes

    @property
    def input_size(self) -> int:
        return self._events.input_size

    @property
    def vocab(self) -> Vocab:
        return self._events.vocab

    def encode(self, grid: np.ndarray) -> np.ndarray:
        """Tokens of a grid, row by row, voices in ``voices`` order; shape ``(T * V,)``.

        Raises:
            ValueError: the grid is not ``(T, num_voices)`` or holds invalid events.
        """
        return self._events.encode(_check_grid(grid, self.num_voices).reshape(-1))

    def decode(self, labels: Sequence[int] | np.ndarray) -> np.ndarray:
        """The grid of a token sequence; an incomplete last row (a cut-off sample) is dropped.

        Returns:
            int64 array ``(len(labels) // V, V)``.

        Raises:
            ValueError: a label outside ``[0, 130)``.
        """
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        lab = lab[: len(lab) - len(lab) % self.num_voices]
        return np.array(self._events.decode(lab), dtype=np.int64).reshape(-1, self.num_voices)

    def inputs(self, x: np.ndarray | Sequence[int]) -> np.ndarray:
        """One-hot rows, one per token: of a grid ``(T, V)`` or of labels ``(N,)``.

        Returns:
            float32 array ``(T * V, 130)`` or ``(N, 130)``.
        """
        x = np.asarray(x, dtype=np.int64)
        labels = self.encode(x) if x.ndim == 2 else x.reshape(-1)
        if ((labels < 0) | (labels >= self.num_classes)).any():
            raise ValueError(f"labels must be in [0, {self.num_classes})")
        out = np.zeros((len(labels), self.input_size), dtype=np.float32)
        out[np.arange(len(labels)), labels] = 1.0
        return out
