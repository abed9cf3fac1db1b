"""The sustain pedal, as note_seq ``apply_sustain_control_changes`` applies it.

The first tests are note-seq's own (``sequences_lib_test.py``,
``testApplySustainControlChanges*``) with seconds written as ticks (x 100). Then MIDI files:
both readers give the same sustained Score, on crafted files and random event streams.
"""

from __future__ import annotations

import random

import mido
import pytest
from test_midi_fast_reader import midi_file, note, off, on, pc

from tunelab.music.midi_io import read_midi, read_midi_symusic
from tunelab.music.midi_scan import NotReproducible
from tunelab.music.score import Note
from tunelab.music.sustain import PedalledPart, apply_sustain


def notes_of(*triples: tuple[int, int, int], velocity: int = 100) -> list[tuple[int, int, int, int]]:
    """(pitch, start, end) -> (start, end, pitch, velocity), like note-seq's testing_lib."""
    return [(s, e, p, velocity) for p, s, e in triples]


def sustained(notes, pedal, is_drum=False):
    return sorted(apply_sustain([PedalledPart(notes, pedal, is_drum)])[0])


def test_pedal_extends_released_notes_until_it_lifts():
    pedal = [(0, 127), (75, 0), (200, 127), (300, 0), (375, 127), (450, 127), (480, 0), (490, 127), (600, 0)]
    piano = notes_of((11, 22, 50), (40, 250, 350), (55, 400, 401))
    other = notes_of((12, 1, 1000), (52, 475, 500))  # another instrument: no pedal of its own
    got = apply_sustain([PedalledPart(piano, pedal), PedalledPart(other, [])])
    # released at 50 under the pedal: to 75; held past the lift at 300: unchanged; to 480
    assert sorted(got[0]) == notes_of((11, 22, 75), (40, 250, 350), (55, 400, 480))
    assert got[1] == other


def test_re_struck_key_ends_the_earlier_note():
    # x-- x-- x--  ->  x---x---x--
    got = sustained(notes_of((60, 25, 150), (60, 125, 150), (72, 200, 350), (60, 200, 300), (60, 350, 450)),
                    [(100, 127), (400, 0)])
    assert got == sorted(notes_of((60, 25, 125), (60, 125, 200), (72, 200, 400), (60, 200, 350),
                                  (60, 350, 450)))


def test_overlapping_repeats_before_the_pedal_are_cut_at_the_next_strike_under_it():
    got = sustained(notes_of((60, 25, 150), (60, 50, 150), (60, 125, 200)), [(100, 127), (400, 0)])
    assert got == sorted(notes_of((60, 25, 125), (60, 50, 125), (60, 125, 400)))


def test_pedal_down_and_up_at_one_time_does_nothing():
    notes = notes_of((60, 50, 150), (60, 200, 300))
    assert sustained(notes, [(100, 127), (100, 0)]) == notes


def test_notes_released_under_the_pedal_end_when_it_lifts():
    assert sustained(notes_of((60, 50, 150), (72, 200, 300)), [(100, 127), (400, 0)]) == \
        notes_of((60, 50, 400), (72, 200, 400))


def test_pedal_after_the_last_note_changes_nothing():
    notes = notes_of((60, 50, 150), (72, 200, 300))
    assert sustained(notes, [(400, 127), (500, 0)]) == notes


def test_identical_notes_under_the_pedal_keep_one():
    assert sustained(notes_of((60, 200, 250), (60, 200, 250)), [(100, 127), (400, 0)]) == \
        notes_of((60, 200, 400))


def test_drums_are_left_alone():
    pedal = [(100, 127), (400, 0)]
    got = apply_sustain([PedalledPart(notes_of((60, 200, 250)), pedal),
                         PedalledPart(notes_of((38, 200, 250)), pedal, is_drum=True)])
    assert got == [notes_of((60, 200, 400)), notes_of((38, 200, 250))]


def test_pedal_events_come_before_notes_at_one_time():
    # a note ending exactly when the pedal lifts, and one ending as it goes down: unchanged
    notes = notes_of((11, 22, 75), (40, 250, 350))
    assert sustained(notes, [(0, 127), (75, 0), (200, 127), (300, 0)]) == notes


def test_pedal_never_lifted_holds_to_the_last_event():
    # the piano's last note ends at 300; the other part's last pedal event is at 900
    got = apply_sustain([PedalledPart(notes_of((60, 0, 100), (64, 200, 300)), [(50, 100)]),
                         PedalledPart(notes_of((40, 0, 10)), [(900, 0)])])
    assert got[0] == notes_of((60, 0, 900), (64, 200, 900))


def test_velocity_and_pedal_threshold():
    notes = [(0, 100, 60, 33)]
    assert sustained(notes, [(50, 63), (400, 0)]) == notes  # 63 is pedal up
    assert sustained(notes, [(50, 64), (400, 0)]) == [(0, 400, 60, 33)]  # velocity kept


# -- MIDI files: both readers ---------------------------------------------------------------

def cc(t, value, ch=0, control=64):
    return t, mido.Message("control_change", control=control, value=value, channel=ch)


def both_readers(path, **kw):
    """read_midi's Score with sustain, asserting that the two readers agree."""
    reference = read_midi(path, reader="pretty_midi", sustain=True, **kw)
    assert read_midi(path, sustain=True, **kw) == reference
    return reference


def test_midi_pedal_read_by_both_readers(tmp_path):
    # 480 ticks per quarter, 4 steps per quarter: 120 ticks a step
    path = midi_file(tmp_path / "p.mid", [[
        *note(0, 240, 60, vel=90), *note(480, 600, 64, vel=30), *note(960, 1080, 60, vel=70),
        cc(120, 127), cc(1440, 0), cc(1500, 100, control=67),  # una corda: not a sustain
        *note(1920, 2040, 67)]])
    plain = read_midi(path).tracks[0].notes
    assert plain == (Note(0, 2, 60, 90), Note(4, 5, 64, 30), Note(8, 9, 60, 70), Note(16, 17, 67, 80))
    assert read_midi_symusic(path, sustain=True) == both_readers(path)
    assert both_readers(path).tracks[0].notes == (
        Note(0, 8, 60, 90),  # released under the pedal, re-struck at step 8
        Note(4, 12, 64, 30),  # to the pedal's lift at tick 1440
        Note(8, 12, 60, 70),
        Note(16, 17, 67, 80))  # after the pedal: unchanged


def test_pedal_is_per_channel(tmp_path):
    path = midi_file(tmp_path / "c.mid", [[*note(0, 120, 60, ch=0), *note(0, 120, 48, ch=1),
                                          cc(60, 127, ch=1), cc(960, 0, ch=1)]])
    score = both_readers(path)
    assert [t.notes[0].end for t in score.tracks] == [1, 8]


def test_pedal_on_a_channel_that_changes_program_goes_to_pretty_midi(tmp_path):
    path = midi_file(tmp_path / "pc.mid", [[cc(0, 127), *note(0, 120, 60), pc(240, 5),
                                           *note(480, 600, 62), cc(900, 0)]])
    with pytest.raises(NotReproducible, match="changes program"):
        read_midi_symusic(path, sustain=True)
    score = both_readers(path)
    assert [(t.program, t.notes[0].end) for t in score.tracks] == [(0, 8), (5, 8)]


def random_pedal_midi(path, rng: random.Random):
    tpq = rng.choice([96, 384, 480])
    tracks = []
    for _ in range(rng.choice([1, 2])):
        events, t = [], 0
        channels = rng.sample([0, 1, 9], rng.choice([1, 2]))
        for _ in range(rng.randrange(5, 40)):
            t += rng.choice([0, 0, 1, tpq // 4, tpq // 2])
            c, p = rng.choice(channels), rng.choice([60, 60, 62, 64])
            r = rng.random()
            if r < 0.4:
                events.append(on(t, p, c, rng.randrange(1, 128)))
            elif r < 0.75:
                events.append(off(t, p, c))
            elif r < 0.98:
                events.append(cc(t, rng.choice([0, 63, 64, 127]), c))
            else:
                events.append(pc(t, rng.randrange(3), c))
        tracks.append(events)
    return midi_file(path, tracks, tpq=tpq)


def test_random_pedalled_streams_read_alike(tmp_path):
    rng = random.Random(64)
    fast = changed = 0
    for i in range(150):
        path = random_pedal_midi(tmp_path / f"r{i}.mid", rng)
        try:
            reference = read_midi(path, reader="pretty_midi", sustain=True)
        except ValueError:
            continue  # no notes, drums only: the readers' errors are tested elsewhere
        assert read_midi(path, sustain=True) == reference, path
        changed += reference != read_midi(path, reader="pretty_midi")
        try:
            assert read_midi_symusic(path, sustain=True) == reference, path
            fast += 1
        except NotReproducible:
            pass
    assert fast >= 50 and changed >= 50, (fast, changed)  # the fast path and the pedal both exercised
