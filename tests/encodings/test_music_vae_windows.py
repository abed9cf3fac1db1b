"""MusicVAE's data: Magenta's OneHotMelodyConverter windows, the trio, user input fitting."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import score_of
from tunelab.encodings.music_vae import (
    MusicVAEEncoding,
    chord_third,
    chord_tone_line,
    fit_window,
    melody_windows,
    slide,
    trio_windows,
    unique_windows,
)
from tunelab.music.score import ChordSymbol

NO, OFF = -2, -1


def test_ninety_classes_over_the_piano_range():
    enc = MusicVAEEncoding(2)
    assert len(enc.vocab) == 90 and enc.window_steps == 32 and enc.input_size == 90
    w = np.full((1, 32, 1), NO)
    w[0, 0, 0], w[0, 8, 0], w[0, 12, 0] = 21, 108, OFF
    labels = enc.encode(w)
    assert labels[0] == 2 and labels[8] == 89 and labels[12] == 1 and labels[1] == 0
    assert np.array_equal(enc.decode(labels), w)
    w[0, 3, 0] = 20
    with pytest.raises(ValueError, match="outside"):
        enc.encode(w)


def test_windows_slide_one_bar_and_dedupe():
    ev = np.arange(64)
    got = slide(ev, 32)
    assert [w[0] for w in got] == [0, 16, 32]  # hop one bar, whole windows only
    same = [np.zeros(4), np.ones(4), np.zeros(4)]
    assert len(unique_windows(same)) == 2


def test_a_window_starts_like_a_note_seq_melody():
    # note_seq Melody._from_event_list: NOTE_OFFs before the first note-on become NO_EVENT.
    ev = np.full(64, NO)
    ev[8], ev[18], ev[24], ev[28] = 60, OFF, 62, OFF  # the note from step 8 ends inside bar 1
    ev[32], ev[36] = OFF, 64  # bar 2 opens on a NOTE_OFF in a rest
    ev[40] = OFF
    w0, w1, w2 = slide(ev, 32)
    assert np.array_equal(w0, ev[:32])  # starts on a rest: unchanged
    assert w1[2] == NO and (w1[:8] == NO).all() and w1[12] == OFF  # later NOTE_OFFs stay
    assert w2[0] == NO and w2[4] == 64 and w2[8] == OFF
    assert ev[18] == OFF and ev[32] == OFF  # the piece itself is untouched
    assert (slide(np.array([OFF, NO, OFF, NO]), 4, 4)[0] == NO).all()  # no note at all


def test_windows_differing_only_in_a_leading_note_off_are_one():
    # bar 0 holds C4 to its end (NOTE_OFF at step 16), bars 1-3 each play E4 on beat 2:
    # the windows at bars 1 and 2 differ only in bar 1's opening NOTE_OFF.
    notes = [(60, 0, 16)] + [(64, 16 * b + 4, 16 * b + 8) for b in (1, 2, 3)]
    w = melody_windows(score_of(notes), bars=2)
    assert w.shape == (2, 32, 1)  # windows at bars 0 and 1; bar 2's is bar 1's again
    assert w[1, 0, 0] == NO and w[1, 4, 0] == 64


def test_trio_windows_keep_a_leading_note_off():
    # Magenta's TrioConverter slices the parts' encoded tensors, not Melody objects: the
    # windows at bars 1 and 2 differ only in the harmony's opening NOTE_OFF, and both stay.
    mel = [(72, 0, 16)] + [(74, 16 * b, 16 * b + 8) for b in (1, 2, 3)]
    bass = [(40, 0, 8)] + [(41, 16 * b, 16 * b + 8) for b in (1, 2, 3)]
    alto = [(64, 8, 16)] + [(65, 16 * b + 4, 16 * b + 8) for b in (1, 2, 3)]
    w = trio_windows(score_of(mel, bass, alto, names=("S", "B", "A")), ("S", "B", "A"), bars=2)
    assert w.shape == (3, 32, 3)
    assert w[1, 0].tolist() == [74, 41, OFF] and w[2, 0].tolist() == [74, 41, NO]
    assert np.array_equal(w[1, 1:], w[2, 1:])


def test_melody_windows_from_a_score():
    # 4 bars of rising quarter notes, a 2-bar gap, then 2 bars: two melodies
    notes = [(60 + i, 4 * i, 4 * i + 4) for i in range(16)]
    notes += [(72, 16 * 6 + 4 * i, 16 * 6 + 4 * i + 4) for i in range(8)]
    w = melody_windows(score_of(notes), bars=2)
    # melody 1: 4 bars -> windows at bars 0, 1, 2; melody 2: 2 bars of one repeated note -> 1
    assert w.shape == (4, 32, 1)
    assert w[0, 0, 0] == 60 and w[1, 0, 0] == 64
    assert (w[3, ::4, 0] == 72).all()


def test_meters_whose_bar_divides_16_steps_only():
    notes = [(60 + i % 5, 4 * i, 4 * i + 4) for i in range(24)]
    assert len(melody_windows(score_of(notes, ts=(2, 4)), bars=2)) > 0
    assert len(melody_windows(score_of(notes, ts=(3, 4)), bars=2)) == 0


def test_chord_thirds_of_weimar_figures():
    assert chord_third("C-7") == 3 and chord_third("Bb7") == 2 and chord_third("Am7b5") == 0
    assert chord_third("Fsus7") == 10 and chord_third("F#7") == 10 and chord_third("Ebj7") == 7
    assert chord_third("NC") is None


def test_trio_windows_align_three_parts():
    mel = [(72, 4 * i, 4 * i + 4) for i in range(64)]
    bass = [(40, 16 * i, 16 * i + 16) for i in range(16)]
    alto = [(64, 8 * i, 8 * i + 8) for i in range(32)]
    s = score_of(mel, bass, alto, names=("S", "B", "A"))
    w = trio_windows(s, ("S", "B", "A"), bars=16)
    assert w.shape == (1, 256, 3)
    assert w[0, 0].tolist() == [72, 40, 64] and w[0, 16, 1] == 40 and w[0, 8, 2] == 64
    enc = MusicVAEEncoding(16, ("melody", "bass", "harmony"))
    assert np.array_equal(enc.decode(enc.encode(w)), w)
    score = enc.to_score(enc.encode(w))
    assert [t.name for t in score.tracks] == ["melody", "bass", "harmony"]
    assert len(score.tracks[1].notes) == 16


def test_jazz_harmony_line_from_chord_symbols():
    from dataclasses import replace

    s = replace(score_of([(70, 0, 64)]), chords=(ChordSymbol(0, "C-7"), ChordSymbol(32, "F7"),
                                                 ChordSymbol(48, "NC")))
    line = chord_tone_line(s)
    assert [(n.start, n.end, n.pitch) for n in line.notes] == [(0, 32, 63), (32, 48, 69)]


def test_fit_window_cuts_pads_and_refuses_one_bar():
    ev = np.full(80, NO)
    ev[::8] = 60
    windows, note = fit_window(ev[:, None], bars=2)
    assert windows.shape == (2, 32, 1) and "cut into 2" in note and "16 steps dropped" in note
    windows, note = fit_window(ev[:24, None], bars=2)
    assert windows.shape == (1, 32, 1) and "padded" in note
    assert windows[0, 24:, 0].tolist().count(OFF) == 1  # the held note ends at the pad
    with pytest.raises(ValueError, match="one bar or less"):
        fit_window(ev[:16, None], bars=2)
    with pytest.raises(ValueError, match="no notes"):
        fit_window(np.full((64, 1), NO), bars=2)


def test_transposition_augment_stays_in_range():
    enc = MusicVAEEncoding(2)
    aug = enc.augmenter(transpose=5)
    rng = np.random.default_rng(0)
    w = enc.windows(enc.encode(np.full((1, 32, 1), NO)))[0].copy()
    w[0, 0], w[4, 0], w[8, 0] = 2 + 60 - 21, 1, 89  # C4, note-off, C8 (top of the range)
    shifts = set()
    for _ in range(50):
        out = aug(w, rng)
        assert out[4, 0] == 1 and out[1, 0] == 0  # specials do not move
        shifts.add(int(out[0, 0] - w[0, 0]))
    assert max(shifts) == 0 and min(shifts) < 0  # up would leave 21..108: only down or none


