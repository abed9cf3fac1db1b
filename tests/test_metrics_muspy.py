"""MusPy's metrics as tunelab reads them (muspy.read_midi of our MIDI), on hand-computed values."""

from __future__ import annotations

import math

import muspy
import pytest

from conftest import score_of
from tunelab.metrics.muspy_metrics import METRICS, music_metrics, muspy_statistics
from tunelab.music.midi_io import write_midi

SCALE = [60, 62, 64, 65, 67, 69, 71, 72]  # C major, C4..C5


def _scale(tmp_path, extra=()):
    notes = [(p, 4 * i, 4 * i + 4) for i, p in enumerate(SCALE)]  # one quarter note each
    return write_midi(score_of(notes, *extra), tmp_path / "scale.mid")


def test_c_major_scale(tmp_path):
    stats = muspy_statistics([_scale(tmp_path)])
    assert stats["pitch_range"] == 12
    assert stats["n_pitches_used"] == 8 and stats["n_pitch_classes_used"] == 7
    assert stats["scale_consistency"] == pytest.approx(1.0)
    assert stats["pitch_in_scale_rate"] == pytest.approx(1.0)  # C major: no key signature in the file
    assert stats["polyphony"] == pytest.approx(1.0) and stats["polyphony_rate"] == 0
    # eight different pitches once each: log2(8) bits; as pitch classes C comes twice
    assert stats["pitch_entropy"] == pytest.approx(3.0)
    probs = [2 / 8] + [1 / 8] * 6
    assert stats["pitch_class_entropy"] == pytest.approx(-sum(p * math.log2(p) for p in probs))
    assert stats["empty_beat_rate"] == 0
    # On the 16th grid, 4/4: bars 1 and 2 have onsets on every beat, bar 3 only the last
    # note's release (MusPy counts the end); 4 differing positions out of 2 x 16.
    assert stats["groove_consistency"] == pytest.approx(1 - 4 / (2 * 16))


def test_out_of_key_notes_and_chords(tmp_path):
    # a C major triad held a whole note, then an F#4 quarter note after a rest
    path = write_midi(score_of([(60, 0, 16), (64, 0, 16), (67, 0, 16), (66, 20, 24)]), tmp_path / "c.mid")
    stats = muspy_statistics([path])
    assert stats["pitch_in_scale_rate"] == pytest.approx(3 / 4)
    # MusPy's rate: steps with more than 2 (its default threshold) pitches over all 24 steps
    assert stats["polyphony_rate"] == pytest.approx(16 / 24)
    assert stats["polyphony"] == pytest.approx((16 * 3 + 4) / 20)  # mean pitches over sounding steps


def test_groove_consistency_sees_rhythm_changes(tmp_path):
    # bar 1: four quarter notes; bar 2: eighth notes on beats 1-2 only; on the 16th grid
    # positions 0,4,8,12 vs 0,2,4,6: 4 of 16 positions differ (2, 6 on; 8, 12 off)
    bar2 = [(62, 16 + 2 * i, 18 + 2 * i) for i in range(4)]
    path = write_midi(score_of([(60, 4 * i, 4 * i + 4) for i in range(4)] + bar2), tmp_path / "g.mid")
    assert muspy_statistics([path])["groove_consistency"] == pytest.approx(1 - 4 / 16)


def test_drums_are_left_out(tmp_path):
    path = write_midi(score_of([(36, 0, 4), (38, 4, 8)], drums=True), tmp_path / "d.mid")
    assert all(math.isnan(v) for v in muspy_statistics([path]).values())
    mixed = _scale(tmp_path)
    assert music_metrics(muspy.read_midi(mixed))["pitch_range"] == 12


def test_mean_over_files_skips_undefined_values(tmp_path):
    one = write_midi(score_of([(60, 0, 4)]), tmp_path / "one.mid")  # a single bar: no groove
    stats = muspy_statistics([one, _scale(tmp_path)])
    assert stats["pitch_range"] == pytest.approx(6.0)  # (0 + 12) / 2
    assert stats["groove_consistency"] == pytest.approx(1 - 4 / (2 * 16))  # the scale's alone
    assert set(stats) == set(METRICS)
