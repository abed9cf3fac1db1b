"""Magenta's melody extractor, checked on hand-worked note sequences."""

from __future__ import annotations

import pytest

from conftest import score_of
from tunelab.music.constants import MELODY_NO_EVENT as NO
from tunelab.music.constants import MELODY_NOTE_OFF as OFF
from tunelab.music.melody import (
    Melody,
    PolyphonicMelodyError,
    extract_melodies,
    melody_from_track,
    set_length,
    split_on_time_signatures,
    squash,
)
from tunelab.music.score import TimeSignature


def events_of(notes, **kw):
    return melody_from_track(score_of(notes).tracks[0], 16, **kw)[0]


def test_quarter_notes_fill_a_bar():
    # C D E (half note): the final NOTE_OFF is stripped, as note_seq does
    assert events_of([(60, 0, 4), (62, 4, 8), (64, 8, 16)]) == [60, NO, NO, NO, 62, NO, NO, NO, 64] + [NO] * 7


def test_rest_between_notes_gives_note_off():
    # two eighth notes separated by an eighth rest
    assert events_of([(60, 0, 2), (62, 4, 6)]) == [60, NO, OFF, NO, 62, NO]


def test_overlapping_note_is_cut_by_the_next_onset():
    # a whole note C overlapped by a D on beat 2: D cuts C and its own end applies
    assert events_of([(60, 0, 8), (62, 4, 6)]) == [60, NO, NO, NO, 62, NO]


def test_melody_starts_on_the_bar_line_before_its_first_note():
    events, start = melody_from_track(score_of([(60, 20, 22)]).tracks[0], 16)
    assert start == 16 and events == [NO] * 4 + [60, NO]


def test_one_bar_of_silence_ends_the_melody():
    notes = [(60, 0, 4), (62, 4, 8), (64, 24, 28)]  # silence from step 8 to 24 = one bar
    assert events_of(notes) == [60, NO, NO, NO, 62, NO, NO, NO]


def test_a_note_held_across_the_bar_is_not_a_gap():
    # C held from step 0 to 20, then D at 32: only 12 silent steps, one melody
    events = events_of([(60, 0, 20), (62, 32, 36)])
    assert events[0] == 60 and events[20] == OFF and events[32] == 62 and len(events) == 36


def test_second_melody_after_a_gap_starts_on_next_bar():
    notes = [(60, 0, 4), (62, 4, 8), (64, 24, 28)]
    mels, stats = extract_melodies(score_of(notes), min_bars=0, min_unique_pitches=1)
    assert [m.events for m in mels] == [(60, NO, NO, NO, 62, NO, NO, NO), (NO,) * 8 + (64, NO, NO, NO)]
    assert [m.start_step for m in mels] == [0, 16]


def test_chord_raises_or_keeps_highest():
    chord = [(60, 0, 4), (64, 0, 4), (67, 4, 8)]  # C+E together, then G
    with pytest.raises(PolyphonicMelodyError):
        events_of(chord)
    assert events_of(chord, ignore_polyphonic_notes=True) == [64, NO, NO, NO, 67, NO, NO, NO]


def scale_bars(bars: int, start: int = 0, pitches=(60, 62, 64, 65, 67, 69, 71, 72)):
    """One quarter note per beat cycling through ``pitches`` for ``bars`` bars of 4/4."""
    return [(pitches[i % len(pitches)], start + 4 * i, start + 4 * i + 4) for i in range(4 * bars)]


def test_chord_later_in_a_track_drops_that_melody_but_keeps_earlier_ones():
    first = scale_bars(8)  # 8 bars, a valid melody
    second = scale_bars(8, start=160) + [(76, 200, 204), (79, 200, 204)]  # contains a chord
    mels, stats = extract_melodies(score_of(first + second))
    assert len(mels) == 1 and mels[0].start_step == 0
    assert stats["polyphonic_tracks_discarded"] == 1


def test_min_bars_and_min_pitch_classes():
    short = scale_bars(6)
    _, stats = extract_melodies(score_of(short))
    assert stats["melodies_discarded_too_short"] == 1
    # C, D, E, F and the octave C: only four pitch classes
    few = scale_bars(8, pitches=(60, 62, 64, 65, 72))
    _, stats = extract_melodies(score_of(few))
    assert stats["melodies_discarded_too_few_pitches"] == 1
    mels, _ = extract_melodies(score_of(scale_bars(7)))
    assert len(mels) == 1 and len(mels[0]) == 7 * 16  # the final NOTE_OFF is stripped


def test_set_length_ends_a_sounding_note_like_note_seq():
    # note_seq Melody.set_length: the first added step is a NOTE_OFF only if a note still sounds
    assert set_length([60, NO], 5) == [60, NO, OFF, NO, NO]
    assert set_length([60, OFF], 4) == [60, OFF, NO, NO]
    assert set_length([NO, NO], 3) == [NO, NO, NO]
    assert set_length([60, NO, 62], 2) == [60, NO]


def test_long_melody_is_truncated_not_dropped():
    mels, stats = extract_melodies(score_of(scale_bars(40)))
    assert len(mels) == 1 and len(mels[0]) == 512 and stats["melodies_truncated"] == 1


def test_drums_and_silent_notes_are_ignored():
    assert extract_melodies(score_of(scale_bars(8), drums=True))[0] == []


def test_time_signature_change_splits_the_score():
    sigs = (TimeSignature(0, 3, 4), TimeSignature(24, 4, 4))
    score = score_of([(60, 0, 12), (62, 20, 28), (64, 28, 32)], sigs=sigs)
    (first, off1), (second, off2) = split_on_time_signatures(score)
    assert (off1, off2) == (0, 24)
    assert [(n.pitch, n.start, n.end) for n in first.tracks[0].notes] == [(60, 0, 12), (62, 20, 24)]
    assert [(n.pitch, n.start, n.end) for n in second.tracks[0].notes] == [(64, 4, 8)]
    assert second.time_signatures == (TimeSignature(0, 4, 4),)


def test_three_four_melody_uses_twelve_step_bars():
    notes = [(p, 4 * i, 4 * i + 4) for i, p in enumerate([60, 62, 64, 65, 67, 69] * 4)]  # 8 bars of 3/4
    mels, _ = extract_melodies(score_of(notes, ts=(3, 4)))
    assert len(mels) == 1 and mels[0].steps_per_bar == 12


def test_squash_transposes_g_major_to_c():
    # G A B C D F#: G major (the only major key holding all six), centred near the range middle
    mel = Melody((67, NO, 69, NO, 71, NO, 72, NO, 74, NO, 78, NO, OFF))
    out = squash(mel, 48, 84, 0)
    assert out.events == (60, NO, 62, NO, 64, NO, 65, NO, 67, NO, 71, NO, OFF)
    assert out.transpose == -7


def test_squash_folds_outliers_into_range():
    # C major (ties with F and G go to the lowest key index, C); 36/38/40/43 fold up, 96/100 down
    mel = Melody((36, 38, 40, 43, 96, 100))
    out = squash(mel, 48, 84, 0)
    assert out.transpose == 0 and out.events == (48, 50, 52, 55, 72, 76)


def test_to_notes_round_trip():
    mel = Melody((60, NO, OFF, NO, 62, NO, NO, 64))
    assert [(n.pitch, n.start, n.end) for n in mel.to_notes()] == [(60, 0, 2), (62, 4, 7), (64, 7, 8)]


def test_to_score_keeps_the_meter_and_can_undo_squash():
    mel = squash(Melody((67, NO, 69, NO, 71, NO, 72, NO, 74, NO, 78), steps_per_bar=12), 48, 84, 0)
    score = mel.to_score(untranspose=True)
    assert score.time_signatures == (TimeSignature(0, 3, 4),)
    assert [n.pitch for n in score.tracks[0].notes] == [67, 69, 71, 72, 74, 78]


# -- the direct builds against note_seq's step-by-step ones -------------------------------

def _reference_melody(track, bar_steps, search_start_step=0, gap_bars=1.0, ignore_polyphonic_notes=False,
                      pad_end=False):
    """note_seq ``Melody.from_quantized_sequence`` as written there: sort, then ``_add_note``
    after ``_add_note`` (the loop melody_from_track replaced with a direct build)."""
    if track.is_drum:
        return [], search_start_step
    notes = sorted((n for n in track.notes if n.start >= search_start_step and n.velocity > 0),
                   key=lambda n: (n.start, -n.pitch))
    if not notes:
        return [], search_start_step
    start = notes[0].start - (notes[0].start - search_start_step) % bar_steps
    mel = _Events()
    last_on = last_off = -1
    for note in notes:
        s, e = note.start - start, note.end - start
        if mel.events:
            if s == last_on:
                if ignore_polyphonic_notes:
                    continue
                raise PolyphonicMelodyError(f"track {track.name!r}: two notes start at step {note.start}")
            if s - last_off >= gap_bars * bar_steps:
                break
        _add_note(mel, note.pitch, s, e)
        last_on, last_off = s, e
    if mel.events and mel.events[-1] == OFF:
        del mel.events[-1]
    length = len(mel.events)
    if pad_end:
        length += -length % bar_steps
    return set_length(mel.events, length), start


class _Events:
    """A mutable event list, as note_seq's Melody holds it."""

    def __init__(self):
        self.events = []


def _add_note(mel, pitch, start, end):
    """note_seq ``Melody._add_note``: everything from ``start`` on is overwritten (a later
    note cuts an earlier one)."""
    mel.events = set_length(mel.events, end + 1)
    mel.events[start] = pitch
    mel.events[end] = OFF
    if end > start + 1:
        mel.events[start + 1:end] = [NO] * (end - start - 1)


def _reference_squash(melody, min_note, max_note, transpose_to_key):
    """note_seq ``Melody.squash``, one event at a time."""
    import numpy as np

    from tunelab.music.constants import NOTE_KEYS

    midi = [e for e in melody.events if 0 <= e <= 127]
    if transpose_to_key is None or not midi:
        amount = 0
    else:
        key_hist = np.zeros(12)
        for pc, count in enumerate(melody.pitch_class_histogram()):
            key_hist[list(NOTE_KEYS[pc])] += count
        key_diff = transpose_to_key - int(key_hist.argmax())
        center_diff = (min_note + max_note - 1) / 2 - ((min(midi) + max(midi)) / 2 + key_diff)
        amount = key_diff + 12 * int(round(center_diff / 12.0))
    events = []
    for e in melody.events:
        if e >= 0:
            e += amount
            if e < min_note:
                e = min_note + (e - min_note) % 12
            elif e >= max_note:
                e = max_note - 12 + (e - max_note) % 12
        events.append(e)
    return tuple(events), melody.transpose + amount


def test_melody_from_track_is_note_seqs_loop_on_random_tracks():
    import math
    import random

    from tunelab.music.score import Note, Track

    rng = random.Random(0)
    for _ in range(3000):
        notes, t = [], rng.randrange(8)
        for _ in range(rng.choice([0, 1, 2, 5, 20, 60])):
            t += rng.choice([0, 0, 1, 2, 3, 4, 8, 16, 20, 40])
            pitch = rng.randrange(40, 90) if rng.random() < 0.9 else 60
            notes.append(Note(t, t + rng.choice([1, 1, 2, 3, 4, 8, 30]), pitch, rng.choice([0, 80, 80, 100])))
        track = Track("t", tuple(notes), is_drum=rng.random() < 0.03)
        args = (rng.choice([1, 3, 4, 12, 16]), rng.choice([0, 0, 1, 5, 17, 40]),
                rng.choice([0.0, 0.5, 1.0, 2.0, math.inf]), rng.random() < 0.5, rng.random() < 0.5)
        results = []
        for fn in (_reference_melody, melody_from_track):
            try:
                results.append(fn(track, *args))
            except PolyphonicMelodyError as e:
                results.append(str(e))
        assert results[0] == results[1], (args, notes)


def test_squash_is_note_seqs_loop_on_random_melodies():
    import random

    rng = random.Random(1)
    for _ in range(3000):
        events = tuple(rng.choice([NO, NO, OFF, rng.randrange(128), rng.randrange(30, 100)])
                       for _ in range(rng.choice([0, 1, 5, 30, 200])))
        mel = Melody(events, transpose=rng.randrange(-3, 3))
        low = rng.choice([0, 36, 48, 60])
        args = (low, low + rng.choice([12, 13, 36, 68]), rng.choice([0, None, 5, 11]))
        out = squash(mel, *args)
        assert (out.events, out.transpose) == _reference_squash(mel, *args), (events, args)
        assert all(type(e) is int for e in out.events)
