"""MuseNet-style tokens: style/instrument header, combined instrument:velocity:pitch note-ons."""

import numpy as np
import pytest

from tunelab.encodings import (
    INSTRUMENTS,
    PROGRAM_OF,
    MuseNetEncoding,
    count_unison_cuts,
    instrument_of,
    to_musenet_grid,
)
from tunelab.encodings.musenet import bin_velocity, velocity_bin
from tunelab.music.score import Note, Score, Track

STYLES = ("bach", "children", "jazz")


def _score(*tracks, sid="s"):
    """tracks: (name, program, notes) or (name, program, notes, is_drum)."""
    return Score(sid, tuple(Track(t[0], tuple(t[2]), program=t[1], is_drum=t[3] if len(t) > 3 else False)
                            for t in tracks))


def _names(enc, labels):
    return enc.vocab.names(labels)


def _round_trips(enc, score, style="bach"):
    decoded = enc.decode(enc.encode(score, style))
    expected = to_musenet_grid(score)
    assert [t.name for t in decoded.tracks] == [t.name for t in expected.tracks]
    assert [t.notes for t in decoded.tracks] == [t.notes for t in expected.tracks]
    programs = [(t.program, t.is_drum) for t in expected.tracks]
    assert [(t.program, t.is_drum) for t in decoded.tracks] == programs
    return decoded


def test_vocab_size_and_layout():
    enc = MuseNetEncoding(STYLES, velocity_bins=4, max_wait=48)
    n_inst = len(INSTRUMENTS)
    assert n_inst == 17
    size = 3 + n_inst + 2 + 48 + n_inst * 4 * 128 + n_inst * 128  # 10950
    assert len(enc.vocab) == enc.num_classes == enc.input_size == size == 10950
    assert enc.vocab.tokens[:4] == ("style:bach", "style:children", "style:jazz", "inst:piano")
    assert enc.vocab.name(enc.on_id("bass", 2, 40)) == "on:bass:2:40"
    assert enc.vocab.name(enc.off_id("drums", 36)) == "off:drums:36"
    assert enc.vocab.tokens[-1] == "off:drums:127"


def test_instruments_and_programs():
    assert instrument_of(Track("solo", (), program=65)) == "reed"
    assert instrument_of(Track("bass", (), program=32)) == "bass"
    assert instrument_of(Track("S", (), program=0)) == "piano"
    assert instrument_of(Track("kit", (), program=65, is_drum=True)) == "drums"
    assert PROGRAM_OF["reed"] == 64 and PROGRAM_OF["sound_effects"] == 120 and PROGRAM_OF["drums"] == 0


def test_velocity_bins_equal_width_centres():
    assert [velocity_bin(v, 4) for v in (1, 32, 33, 64, 65, 96, 97, 127)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [bin_velocity(b, 4) for b in (1, 2, 3, 4)] == [16, 48, 80, 112]
    for bins in (1, 3, 4, 8, 32):
        assert all(velocity_bin(bin_velocity(b, bins), bins) == b for b in range(1, bins + 1))


def test_header():
    enc = MuseNetEncoding(STYLES)
    header = enc.header("jazz", ["reed", "bass"])
    assert _names(enc, header) == ["style:jazz", "inst:bass", "inst:reed", "begin"]
    with pytest.raises(ValueError, match="'rock'.*bach"):
        enc.header("rock", ["piano"])
    with pytest.raises(ValueError, match="kazoo"):
        enc.header("bach", ["piano", "kazoo"])


def test_one_note_and_wait_chaining():
    enc = MuseNetEncoding(STYLES)
    score = _score(("m", 0, [Note(100, 104, 60, 80)]))
    assert _names(enc, enc.encode(score, "children")) == [
        "style:children", "inst:piano", "begin", "wait:48", "wait:48", "wait:4", "on:piano:3:60",
        "wait:4", "off:piano:60", "end"]
    _round_trips(enc, score)


def test_offs_before_ons_at_the_same_step():
    enc = MuseNetEncoding(STYLES)
    score = _score(("solo", 65, [Note(0, 4, 72, 100), Note(4, 8, 74, 100)]),
                   ("bass", 32, [Note(0, 4, 40, 60), Note(4, 8, 41, 60)]))
    assert _names(enc, enc.encode(score, "jazz")) == [
        "style:jazz", "inst:bass", "inst:reed", "begin",
        "on:bass:2:40", "on:reed:4:72", "wait:4",
        "off:bass:40", "off:reed:72", "on:bass:2:41", "on:reed:4:74", "wait:4",
        "off:bass:41", "off:reed:74", "end"]
    decoded = _round_trips(enc, score, "jazz")
    assert [(t.name, t.program) for t in decoded.tracks] == [("bass", 32), ("reed", 64)]


def test_unisons_collapse_and_cut():
    # Bach voices all map to piano: A and T both start C4 at 0 (A longer), B re-strikes it at 2
    # (cutting the longest), S has a D4 nested in nothing -- untouched.
    score = _score(("S", 0, [Note(0, 8, 62, 90)]), ("A", 0, [Note(0, 8, 60, 90)]),
                   ("T", 0, [Note(0, 4, 60, 90)]), ("B", 0, [Note(2, 6, 60, 90)]))
    grid = to_musenet_grid(score)
    assert [t.name for t in grid.tracks] == ["piano"]
    assert grid.tracks[0].notes == (Note(0, 2, 60, 80), Note(0, 8, 62, 80), Note(2, 6, 60, 80))
    assert count_unison_cuts(score) == 2  # T dropped, A cut
    _round_trips(MuseNetEncoding(STYLES), score)


def test_decode_is_lenient():
    enc = MuseNetEncoding(STYLES)
    v = enc.vocab.index
    labels = [v("style:bach"), v("inst:piano"), v("begin"), v("off:piano:50"),  # unmatched off
              v("on:piano:2:60"), v("wait:2"), v("on:piano:4:60"),  # re-strike ends the first
              v("on:piano:1:64"), v("wait:3"), v("end"), v("wait:5"), v("off:piano:64")]
    decoded = enc.decode(labels, qpm=90.0, score_id="x")
    assert decoded.id == "x" and decoded.qpm == 90.0 and decoded.steps_per_quarter == 4
    assert decoded.tracks[0].notes == (Note(0, 2, 60, 48), Note(2, 5, 60, 112), Note(2, 5, 64, 16))


def test_round_trip_mixed_with_drums_and_silent_notes():
    enc = MuseNetEncoding(STYLES)
    rng = np.random.default_rng(0)
    notes = [Note(int(s), int(s) + int(d), int(p), int(vel)) for s, d, p, vel in
             zip(rng.integers(0, 200, 60), rng.integers(1, 70, 60), rng.integers(30, 90, 60),
                 rng.integers(0, 128, 60), strict=True)]
    score = _score(("a", 0, notes[:20]), ("b", 0, notes[20:40]), ("c", 33, notes[40:50]),
                   ("d", 0, notes[50:], True))
    decoded = _round_trips(enc, score, "children")
    assert decoded.tracks[-1].is_drum and all(n.velocity > 0 for t in decoded.tracks for n in t.notes)


def test_unknown_style():
    enc = MuseNetEncoding(STYLES)
    with pytest.raises(ValueError, match=r"'rock'.*\['bach', 'children', 'jazz'\]"):
        enc.encode(_score(("m", 0, [Note(0, 4, 60)])), "rock")


def test_augment_transpose():
    enc = MuseNetEncoding(STYLES)
    labels = enc.encode(_score(("m", 0, [Note(0, 4, 120)]), ("k", 0, [Note(0, 4, 36)], True)), "bach")
    up = enc.decode(enc.augment(labels, transpose=5))
    assert [n.pitch for t in up.tracks for n in t.notes] == [125, 36]  # drums keep their pitch
    assert enc.augment(labels, transpose=8) is None
    assert enc.vocab.name(int(enc.augment(labels, transpose=-3)[0])) == "style:bach"


def test_augment_velocity_shift_clips():
    enc = MuseNetEncoding(STYLES)
    labels = enc.encode(_score(("m", 0, [Note(0, 4, 60, 20), Note(4, 8, 62, 100)])), "jazz")
    louder = enc.decode(enc.augment(labels, velocity_shift=1))
    assert [n.velocity for n in louder.tracks[0].notes] == [48, 112]
    softer = enc.decode(enc.augment(labels, velocity_shift=-2))
    assert [n.velocity for n in softer.tracks[0].notes] == [16, 48]


def test_augment_time_scale():
    enc = MuseNetEncoding(STYLES)
    score = _score(("m", 0, [Note(0, 1, 60), Note(1, 2, 62), Note(3, 7, 64), Note(3, 4, 67)]))
    labels = enc.encode(score, "bach")
    slow = enc.decode(enc.augment(labels, time_scale=2.0))
    assert slow.tracks[0].notes == tuple(Note(2 * n.start, 2 * n.end, n.pitch, 80)
                                         for n in to_musenet_grid(score).tracks[0].notes)
    fast = enc.decode(enc.augment(labels, time_scale=0.5))
    assert fast.tracks[0].notes == (Note(0, 1, 60, 80), Note(1, 2, 62, 80), Note(2, 3, 67, 80),
                                    Note(2, 4, 64, 80))
    assert all(n.end - n.start >= 1 for n in fast.tracks[0].notes)
    again = enc.augment(enc.augment(labels, time_scale=0.5), time_scale=1.0)
    assert np.array_equal(again, enc.augment(labels, time_scale=0.5))  # output is canonical


def test_wait_steps_and_inputs():
    enc = MuseNetEncoding(STYLES, max_wait=8)
    assert enc.wait_steps.shape == (len(enc.vocab),)
    assert enc.wait_steps[enc.vocab.index("wait:1")] == 1 and enc.wait_steps[enc.vocab.index("wait:8")] == 8
    assert enc.wait_steps.sum() == sum(range(1, 9))
    labels = enc.encode(_score(("m", 0, [Note(3, 20, 60)])), "bach")
    assert enc.wait_steps[labels].sum() == 20
    x = enc.inputs(labels)
    assert x.shape == (len(labels), len(enc.vocab)) and x.dtype == np.float32
    assert np.array_equal(x.argmax(1), labels)
