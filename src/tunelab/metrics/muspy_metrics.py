"""MusPy's absolute metrics (Dong et al. 2020, `muspy.metrics`) over sets of MIDI files.

Samples and real pieces are read back by the same reader (`muspy.read_midi`), so both
sides see identical timing and track handling, then put on tunelab's 16th-note grid (every
piece here is quantized to it): MusPy's groove consistency compares onset positions per
bar, and at a MIDI file's 480 ticks per beat any bar of a few onsets scores about 1.
Drum tracks are left out: their "pitches" are instruments.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import muspy

from tunelab.music.constants import DEFAULT_STEPS_PER_QUARTER

# Metrics that need nothing but the music.
PLAIN = {
    "pitch_range": muspy.pitch_range,                    # semitones, highest - lowest
    "n_pitches_used": muspy.n_pitches_used,
    "n_pitch_classes_used": muspy.n_pitch_classes_used,
    "polyphony": muspy.polyphony,                        # mean pitches sounding where any sounds
    "polyphony_rate": muspy.polyphony_rate,              # share of all steps with > 2 pitches (its default)
    "scale_consistency": muspy.scale_consistency,        # best share of notes in one major/minor scale
    "pitch_entropy": muspy.pitch_entropy,                # bits, over the 128 pitches
    "pitch_class_entropy": muspy.pitch_class_entropy,    # bits, over the 12 pitch classes
    "empty_beat_rate": muspy.empty_beat_rate,
}
METRICS = (*PLAIN, "pitch_in_scale_rate", "groove_consistency")


def measure_resolution(music: muspy.Music) -> int:
    """Time steps per bar from the first time signature (4/4 when the file has none)."""
    ts = music.time_signatures[0] if music.time_signatures else None
    num, den = (ts.numerator, ts.denominator) if ts else (4, 4)
    return max(1, round(music.resolution * num * 4 / den))


def music_metrics(music: muspy.Music, steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one piece; NaN where a metric is undefined
    (no notes; groove consistency of a single bar).

    ``pitch_in_scale_rate`` uses the file's first key signature, else C major: melody models
    see melodies transposed to C (``squash.transpose_to_key=0``), so for them it is the
    in-key rate; for other encodings read ``scale_consistency`` (the best key) instead.
    """
    music = music.deepcopy()
    music.adjust_resolution(steps_per_quarter)
    music.tracks = [t for t in music.tracks if not t.is_drum and t.notes]
    if not music.tracks:
        return dict.fromkeys(METRICS, math.nan)
    out = {name: float(fn(music)) for name, fn in PLAIN.items()}
    key = music.key_signatures[0] if music.key_signatures else None
    root, mode = (key.root, key.mode) if key and key.root is not None and key.mode else (0, "major")
    out["pitch_in_scale_rate"] = float(muspy.pitch_in_scale_rate(music, root, mode))
    out["groove_consistency"] = float(muspy.groove_consistency(music, measure_resolution(music)))
    return out


def muspy_statistics(midi_files: list[Path], steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER
                     ) -> dict[str, float]:
    """Mean of each metric over ``midi_files``; undefined (NaN) values are left out, and a
    metric undefined for every file stays NaN."""
    values: dict[str, list[float]] = {k: [] for k in METRICS}
    for f in midi_files:
        for name, v in music_metrics(muspy.read_midi(f), steps_per_quarter).items():
            if not math.isnan(v):
                values[name].append(v)
    return {k: (statistics.fmean(v) if v else math.nan) for k, v in values.items()}
