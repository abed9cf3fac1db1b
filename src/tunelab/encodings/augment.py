"""Training augmentation shared by the encodings whose pitches are consecutive token ids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Augmenter = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def transposer(transpose: int, pitched: tuple[int, int]) -> Augmenter:
    """A transposition of a whole sequence by one shift drawn from ``[-transpose, transpose]``
    (as Magenta's ``NoteSequenceAugmenter`` and MuseNet draw it), for a vocab whose ids in
    ``[lo, hi)`` are pitches a semitone apart; every other id stays. A sequence the shift
    would push outside ``[lo, hi)`` keeps its pitches.

    Args:
        transpose: The largest shift in semitones, >= 0.
        pitched: ``(lo, hi)``, the pitched ids.

    Returns:
        ``apply(tokens, rng)``: the (possibly) transposed tokens, a new array when moved.
    """
    if transpose < 0:
        raise ValueError(f"transpose must be >= 0, got {transpose}")
    lo, hi = pitched

    def apply(tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shift = int(rng.integers(-transpose, transpose + 1))
        inside = (tokens >= lo) & (tokens < hi)
        moved = tokens + shift * inside
        if shift == 0 or (moved[inside] < lo).any() or (moved[inside] >= hi).any():
            return tokens
        return moved

    return apply
