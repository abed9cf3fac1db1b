"""Multi-voice piano-roll grid for four-part chorales (JSB), as in Coconet (Huang et al. 2017)
and the Music Transformer JSB experiments (Huang et al. 2018).

A grid is an int array ``(T, V)`` on 16th-note steps: the MIDI pitch each voice sounds at
each step, or ``-1`` for silence. Tokens serialize it row by row (t0: S A T B, t1: S A T B,
...); the vocab is the 128 pitches (id = pitch) plus ``REST`` (id 128).

The grid cannot tell a held note from a repeated one: :func:`grid_to_score` merges equal
consecutive pitches of a voice into one note (the JSB data has no ties or repeats marked),
so ``score -> grid -> score`` merges re-struck notes while ``grid -> score -> grid`` and
``decode(encode(grid))`` are exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tunelab.encodings.augment import Augmenter, transposer
from tunelab.encodings.vocab import Vocab
from tunelab.music.constants import DEFAULT_QPM, DEFAULT_VELOCITY, SATB
from tunelab.music.score import Note, Score, Track

SILENCE = -1  # grid value of a silent voice
NUM_PITCHES = 128
REST = NUM_PITCHES  # token id of a silent voice
GRID_STEPS_PER_QUARTER = 4


def score_to_grid(
    score: Score, voices: Sequence[str] = SATB, num_steps: int | None = None
) -> np.ndarray:
    """Samples each named track at every 16th step.

    Args:
        score: A score at 4 steps per quarter with a track per voice.
        voices: Track names, one grid column each, top voice first.
        num_steps: Grid length; defaults to the last note end among ``voices``.

    Returns:
        int64 array ``(T, len(voices))`` of pitches, ``-1`` where a voice is silent. Where
        notes of one voice overlap, the highest pitch is kept (as Magenta keeps the highest
        of simultaneous melody onsets).

    Raises:
        ValueError: ``score.steps_per_quarter != 4``.
        KeyError: a voice has no track.
    """
    if score.steps_per_quarter != GRID_STEPS_PER_QUARTER:
        raise ValueError(
            f"score {score.id} is at {score.steps_per_quarter} steps per quarter; the voice "
            f"grid needs {GRID_STEPS_PER_QUARTER} (16th notes)"
        )
    tracks = [score.track(v) for v in voices]
    if num_steps is None:
        num_steps = max((n.end for t in tracks for n in t.notes), default=0)
    grid = np.full((num_steps, len(voices)), SILENCE, dtype=np.int64)
    for col, track in enumerate(tracks):
        for n in track.notes:
            span = grid[n.start:min(n.end, num_steps), col]
            np.maximum(span, n.pitch, out=span)  # silence is -1, so any pitch wins over it
    return grid


def grid_to_score(
    grid: np.ndarray,
    voices: Sequence[str] = SATB,
    score_id: str = "grid",
    qpm: float = DEFAULT_QPM,
    velocity: int = DEFAULT_VELOCITY,
) -> Score:
    """A score with one track per grid column; equal consecutive pitches form one note.

    Args:
        grid: int array ``(T, V)`` of pitches or ``-1``.
        voices: Track names, one per column.
        score_id: The score's id.
        qpm: Tempo.
        velocity: Velocity of every note (the grid carries none).

    Raises:
        ValueError: the grid's shape does not match ``voices`` or holds invalid values.
    """
    grid = np.asarray(grid, dtype=np.int64)
    if grid.ndim != 2 or grid.shape[1] != len(voices):
        raise ValueError(f"grid of shape {grid.shape} does not have {len(voices)} voice columns")
    if ((grid < SILENCE) | (grid >= NUM_PITCHES)).any():
        raise ValueError("grid values must be MIDI pitches 0..127 or -1 for silence")
    tracks = []
    for col, name in enumerate(voices):
        line = grid[:, col]
        # A note starts wherever the value changes to a pitch and lasts while it stays.
        changes = np.flatnonzero(np.diff(line, prepend=SILENCE - 1, append=SILENCE - 1))
        notes = [
            Note(int(s), int(e), int(line[s]), velocity)
            for s, e in zip(changes[:-1], changes[1:], strict=True)
            if line[s] != SILENCE
        ]
        tracks.append(Track(name, tuple(notes)))
    return Score(
        id=score_id, tracks=tuple(tracks), steps_per_quarter=GRID_STEPS_PER_QUARTER, qpm=qpm
    )


# Mirrors Coconet's / Music Transformer's JSB serialization (no note-seq counterpart).
class VoiceGridEncoding:
    """Grid <-> tokens, one token per voice per step, in grid (row-major) order."""

    name = "voice_grid"

    def __init__(self, num_voices: int = len(SATB)) -> None:
        """Configures the encoding.

        Args:
            num_voices: Columns of the grids this encoding handles.
        """
        self.num_voices = num_voices
        self._vocab = Vocab(tuple(f"PITCH_{p}" for p in range(NUM_PITCHES)) + ("REST",))

    @property
    def num_classes(self) -> int:
        return NUM_PITCHES + 1

    @property
    def input_size(self) -> int:
        return NUM_PITCHES + 1

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    def inputs(self, grid: np.ndarray) -> np.ndarray:
        """One-hot rows of the tokens of ``grid``, shape ``(T * voices, 129)`` float32."""
        labels = self.encode(grid)
        out = np.zeros((len(labels), self.input_size), dtype=np.float32)
        out[np.arange(len(labels)), labels] = 1.0
        return out

    def encode(self, grid: np.ndarray) -> np.ndarray:
        """Tokens of a grid, row by row; silence becomes ``REST``.

        Raises:
            ValueError: the grid is not ``(T, num_voices)`` or holds invalid values.
        """
        grid = np.asarray(grid, dtype=np.int64)
        if grid.ndim != 2 or grid.shape[1] != self.num_voices:
            raise ValueError(f"grid of shape {grid.shape} is not (T, {self.num_voices})")
        if ((grid < SILENCE) | (grid >= NUM_PITCHES)).any():
            raise ValueError("grid values must be MIDI pitches 0..127 or -1 for silence")
        return np.where(grid == SILENCE, REST, grid).reshape(-1)

    def augmenter(self, transpose: int = 0) -> Augmenter:
        """Training augmentation of a whole piece: every voice transposed by one shift drawn
        from ``[-transpose, transpose]``; ``REST`` stays, and a piece the shift would push
        outside 0..127 keeps its pitches."""
        return transposer(transpose, (0, REST))

    def decode(self, labels: Sequence[int] | np.ndarray, voices: int | None = None) -> np.ndarray:
        """The grid of a token sequence.

        Args:
            labels: Token ids, a whole number of rows.
            voices: Voices per row; defaults to ``num_voices``.

        Returns:
            int64 array ``(len(labels) // voices, voices)``.

        Raises:
            ValueError: a partial last row or a token outside ``[0, 129)``.
        """
        v = self.num_voices if voices is None else voices
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(lab) % v:
            raise ValueError(f"{len(lab)} tokens are not whole rows of {v} voices")
        if ((lab < 0) | (lab > REST)).any():
            raise ValueError(f"token ids must be in [0, {REST}]")
        return np.where(lab == REST, SILENCE, lab).reshape(-1, v)
