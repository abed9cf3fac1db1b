"""Performance events (performance_with_dynamics): 388 tokens, 10 ms, 32 velocity bins."""

import pytest

from tunelab.encodings import (
    PerformanceEncoding,
    count_fifo_repairs,
    events_to_score,
    score_to_events,
    to_performance_grid,
)
from tunelab.encodings.performance import bin_to_velocity, velocity_to_bin
from tunelab.music.score import Note, Score, Track

ON, OFF, SHIFT, VEL = "NOTE_ON", "NOTE_OFF", "TIME_SHIFT", "VELOCITY"


def _score(*tracks, spq=4, qpm=120.0, sid="s"):
    return Score(sid, tuple(Track(f"v{i}", tuple(t)) for i, t in enumerate(tracks)),
                 steps_per_quarter=spq, qpm=qpm)


def _round_trips(score):
    enc = PerformanceEncoding()
    decoded = enc.decode(enc.encode(score), score_id=score.id)
    assert decoded == to_performance_grid(score)
    return decoded


def test_sizes_and_token_order_match_note_seq():
    enc = PerformanceEncoding()
    assert enc.num_classes == len(enc.vocab) == 388
    names = {i: enc.vocab.name(i) for i in (0, 127, 128, 255, 256, 355, 356, 387)}
    assert names == {
        0: "NOTE_ON_0", 127: "NOTE_ON_127", 128: "NOTE_OFF_0", 255: "NOTE_OFF_127",
        256: "TIME_SHIFT_1", 355: "TIME_SHIFT_100", 356: "VELOCITY_1", 387: "VELOCITY_32",
    }


def test_velocity_bins():
    # 127 velocities in 32 bins of 4: 1..4 -> bin 1, 5 -> 2, 80 -> 20, 125..127 -> 32.
    assert [velocity_to_bin(v) for v in (1, 4, 5, 80, 125, 127)] == [1, 1, 2, 20, 32, 32]
    assert [bin_to_velocity(b) for b in (1, 2, 20, 32)] == [1, 5, 77, 125]


def test_one_quarter_note():
    # C4 for a quarter at 120 qpm = 0.5 s = 50 ticks, velocity 80 (bin 20).
    score = _score([Note(0, 4, 60, 80)])
    assert score_to_events(score) == [(VEL, 20), (ON, 60), (SHIFT, 50), (OFF, 60)]
    assert PerformanceEncoding().encode(score).tolist() == [356 + 19, 60, 256 + 49, 128 + 60]
    decoded = _round_trips(score)
    assert decoded.steps_per_quarter == 50 and decoded.qpm == 120.0
    assert decoded.seconds_per_step() == pytest.approx(0.01)
    assert decoded.tracks[0].notes == (Note(0, 50, 60, 77),)


def test_long_shifts_split_into_one_second_pieces():
    # Two whole notes at 120 qpm (2 s each) separated by a half-note rest (1 s) and preceded
    # by 2.5 s of silence: shifts of at most 100 ticks.
    score = _score([Note(20, 36, 67, 100), Note(44, 60, 72, 100)])
    events = score_to_events(score)
    shifts = [v for t, v in events if t == SHIFT]
    assert shifts == [100, 100, 50, 100, 100, 100, 100, 100]
    assert events[:5] == [(SHIFT, 100), (SHIFT, 100), (SHIFT, 50), (VEL, 25), (ON, 67)]
    decoded = _round_trips(score)
    assert decoded.tracks[0].notes == (Note(250, 450, 67, 97), Note(550, 750, 72, 97))


def test_velocity_events_only_on_change_and_merged_tracks():
    # Soprano and bass of a cadence (V-I in C): the bass louder; tracks merge into one.
    sop = [Note(0, 4, 67, 64), Note(4, 8, 72, 64)]
    bass = [Note(0, 4, 43, 100), Note(4, 8, 48, 100)]
    score = _score(sop, bass)
    events = score_to_events(score)
    # Same tick: notes by pitch, so the bass G2 (bin 25) comes before the soprano G4 (bin 16).
    assert events[:4] == [(VEL, 25), (ON, 43), (VEL, 16), (ON, 67)]
    assert events[4:] == [
        (SHIFT, 50), (OFF, 43), (OFF, 67), (VEL, 25), (ON, 48), (VEL, 16), (ON, 72),
        (SHIFT, 50), (OFF, 48), (OFF, 72),
    ]
    decoded = _round_trips(score)
    assert len(decoded.tracks) == 1 and decoded.num_notes == 4


def test_tempo_and_rounding_to_ten_ms():
    # At 100 qpm a 16th lasts 150 ms; at 480 steps per quarter one step is ~1 ms, so a
    # 2-step note rounds to zero ticks and is kept one tick long, as note-seq does.
    assert score_to_events(_score([Note(1, 3, 60)], qpm=100.0))[0] == (SHIFT, 15)
    tiny = _score([Note(0, 2, 60, 80)], spq=480)
    assert to_performance_grid(tiny).tracks[0].notes == (Note(0, 1, 60, 77),)
    _round_trips(tiny)
    # Halves round up: at 120 qpm and 100 steps per quarter a step is 5 ms -> tick 1.
    assert score_to_events(_score([Note(1, 4, 60)], spq=100))[0] == (SHIFT, 1)


def test_nested_unison_is_canonicalised_by_fifo_pairing():
    # Alto holds C4 for a half note while the tenor touches the same C4 for an eighth inside
    # it: NOTE_OFFs are paired first-in-first-out, so the tenor's off ends the alto's note.
    alto = [Note(0, 8, 60, 80)]
    tenor = [Note(2, 4, 60, 100)]
    score = _score(alto, tenor)
    grid = to_performance_grid(score)
    assert grid.tracks[0].notes == (Note(0, 50, 60, 77), Note(25, 100, 60, 97))
    assert count_fifo_repairs(score) == 2
    _round_trips(score)
    # Overlapping (not nested) unisons pair correctly and need no repair.
    assert count_fifo_repairs(_score([Note(0, 4, 60)], [Note(2, 6, 60)])) == 0


def test_unisons_starting_together():
    # Two voices strike G4 together with different velocities and lengths.
    score = _score([Note(0, 4, 67, 40)], [Note(0, 8, 67, 120)])
    decoded = _round_trips(score)
    assert decoded.tracks[0].notes == (Note(0, 50, 67, 37), Note(0, 100, 67, 117))


def test_chorale_fragment_round_trip():
    # Four voices over two bars in 3/4 at 80 qpm, with a suspension and a unison A-T.
    s = [Note(0, 4, 72, 90), Note(4, 8, 71, 85), Note(8, 16, 72, 90), Note(16, 24, 74, 70)]
    a = [Note(0, 8, 67, 70), Note(8, 12, 65, 70), Note(12, 24, 64, 60)]
    t = [Note(0, 6, 64, 70), Note(6, 8, 62, 70), Note(8, 16, 60, 70), Note(16, 24, 64, 55)]
    b = [Note(0, 8, 48, 100), Note(8, 16, 53, 100), Note(16, 24, 55, 110)]
    score = _score(s, a, t, b, qpm=80.0)
    decoded = _round_trips(score)
    assert decoded.num_notes == 14


def test_velocity_zero_notes_are_dropped():
    score = _score([Note(0, 4, 60, 0), Note(4, 8, 62, 80)])
    assert [e for e in score_to_events(score) if e[0] == ON] == [(ON, 62)]
    _round_trips(score)


def test_decoding_free_token_streams():
    # Generated streams may hold unmatched offs and hanging notes: ignore / close at the end.
    score = events_to_score([(OFF, 60), (ON, 62), (SHIFT, 30), (ON, 64), (SHIFT, 20)])
    assert score.tracks[0].notes == (Note(0, 50, 62, 100), Note(30, 50, 64, 100))
    enc = PerformanceEncoding()
    assert enc.labels_to_events(enc.events_to_labels([(SHIFT, 100), (VEL, 32)])) == [
        (SHIFT, 100), (VEL, 32)]
    with pytest.raises(ValueError):
        enc.events_to_labels([(SHIFT, 101)])
    with pytest.raises(ValueError):
        enc.decode([388])


def test_empty_score():
    enc = PerformanceEncoding()
    assert enc.encode(_score([])).tolist() == []
    _round_trips(_score([]))
    x = enc.inputs(_score([Note(0, 4, 60)]))
    assert x.shape == (4, 388)
    # Token ids give the same one-hot rows without re-encoding a decoded score.
    assert (enc.inputs(x.argmax(axis=1)) == x).all()


def test_array_encoding_gives_the_event_walks_tokens():
    # encode() computes on arrays; it must give events_to_labels(score_to_events(s)) token
    # for token: long gaps (several shifts), velocity-bin changes, ties, silent notes, tempi.
    import random

    import numpy as np

    from tunelab.encodings.performance import score_to_labels

    enc, rng = PerformanceEncoding(), random.Random(0)
    for _ in range(300):
        tracks = []
        for _ in range(rng.randint(0, 3)):
            notes = []
            for _ in range(rng.randint(0, 25)):
                start = rng.randint(0, rng.choice([5, 50, 2000]))
                end = start + rng.randint(1, rng.choice([2, 30, 500]))
                velocity = rng.choice([0, 1, 4, 5, 64, 127, rng.randint(0, 127)])
                notes.append(Note(start, end, rng.randint(0, 127), velocity))
            tracks.append(notes)
        score = _score(*tracks, spq=rng.choice([1, 4, 24, 480]), qpm=rng.choice([120.0, 33.3, 250.0, 999.9]))
        expected = enc.events_to_labels(score_to_events(score))
        got = score_to_labels(score)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
