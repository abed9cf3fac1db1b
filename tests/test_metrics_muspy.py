"""The MusPy path tunelab uses (read_midi + pitch metrics), on hand-computed values."""

from __future__ import annotations

import math

import pytest

from tunelab.evaluate import pitch_statistics
from tunelab.music.midi_io import write_midi
from tunelab.music.score import Note, Score, Track


def test_c_major_scale_pitch_statistics(tmp_path):
    # C major scale C4..C5, one quarter note each: range 12, 7 pitch classes, all in scale
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    score = Score("scale", (Track("m", tuple(Note(4 * i, 4 * i + 4, p) for i, p in enumerate(pitches))),))
    stats = pitch_statistics([write_midi(score, tmp_path / "scale.mid")])
    assert stats["pitch_range"] == 12
    assert stats["n_pitch_classes_used"] == 7
    assert stats["scale_consistency"] == pytest.approx(1.0)
    # eight different pitches once each: log2(8) bits; as pitch classes C comes twice
    assert stats["pitch_entropy"] == pytest.approx(3.0)
    probs = [2 / 8] + [1 / 8] * 6
    assert stats["pitch_class_entropy"] == pytest.approx(-sum(p * math.log2(p) for p in probs))


def test_single_note(tmp_path):
    score = Score("one", (Track("m", (Note(0, 4, 60),)),))
    stats = pitch_statistics([write_midi(score, tmp_path / "one.mid")])
    assert stats["pitch_range"] == 0 and stats["n_pitch_classes_used"] == 1
