"""MIDI in and out, and every kind of bad file a user's folder holds."""

from __future__ import annotations

import mido
import pretty_midi
import pytest

from tunelab.music.midi_io import CorruptMidiError, read_midi, write_midi
from tunelab.music.score import Note, Score, TimeSignature, Track


def _midi(path, messages, midi_type=1, tpq=480):
    mf = mido.MidiFile(type=midi_type, ticks_per_beat=tpq)
    mf.tracks.append(mido.MidiTrack(messages))
    mf.save(path)
    return path


def _note(pitch, on, off, channel=0):
    return [mido.Message("note_on", note=pitch, velocity=90, time=on, channel=channel),
            mido.Message("note_off", note=pitch, velocity=0, time=off, channel=channel)]


def test_write_then_read_is_identity(tmp_path):
    # C (quarter), D (eighth), rest, E (half) in 3/4 then 4/4
    score = Score("x", (Track("melody", (Note(0, 4, 60, 90), Note(4, 6, 62, 100), Note(8, 16, 64, 70))),),
                  time_signatures=(TimeSignature(0, 3, 4), TimeSignature(12, 4, 4)), qpm=90.0)
    back = read_midi(write_midi(score, tmp_path / "x.mid"))
    assert back.tracks[0].notes == score.tracks[0].notes
    assert back.time_signatures == score.time_signatures and back.qpm == pytest.approx(90.0)
    assert back.tracks[0].name == "melody"


def test_quantizes_in_ticks_across_tempo_changes(tmp_path):
    # a quarter at 120 qpm, then the tempo halves: the next quarter is still 4 steps long
    msgs = [mido.MetaMessage("set_tempo", tempo=500000, time=0), *_note(60, 0, 480),
            mido.MetaMessage("set_tempo", tempo=1000000, time=0), *_note(62, 0, 480)]
    score = read_midi(_midi(tmp_path / "t.mid", msgs))
    assert [(n.pitch, n.start, n.end) for n in score.tracks[0].notes] == [(60, 0, 4), (62, 4, 8)]


def test_nearest_step_rounding_and_minimum_length(tmp_path):
    # a grace-like note 10 ticks long still gets one step; 130 ticks rounds to step 1
    msgs = [*_note(60, 0, 10), *_note(62, 120, 360)]
    notes = read_midi(_midi(tmp_path / "r.mid", msgs)).tracks[0].notes
    assert [(n.start, n.end) for n in notes] == [(0, 1), (1, 4)]


BAD_FILES = {
    "empty.mid": (b"", "empty file"),
    "text.mid": (b"this is not a MIDI file at all", "no MThd header"),
    "truncated_header.mid": (b"MThd\x00\x00\x00\x06\x00\x01", "truncated MIDI header"),
    "zero_tracks.mid": (b"MThd\x00\x00\x00\x06\x00\x01\x00\x00\x01\xe0", "no tracks"),
    "zero_tpq.mid": (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x00\x00MTrk\x00\x00\x00\x04\x00\xff\x2f\x00",
                     "zero ticks per quarter"),
    "truncated_track.mid": (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x01\x00\x00\x90<",
                            "unreadable MIDI"),
    # a track whose length runs past the end of the file: mido's EOFError has no message
    "track_overrun.mid": (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x40\x00\x90<@",
                          "EOFError: the file ends inside a track"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_crafted_bad_bytes(tmp_path, name):
    data, reason = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CorruptMidiError, match=reason):
        read_midi(path)


def test_type_2_is_rejected(tmp_path):
    with pytest.raises(CorruptMidiError, match="type-2"):
        read_midi(_midi(tmp_path / "t2.mid", _note(60, 0, 480), midi_type=2))


def test_absurd_tempo_is_rejected(tmp_path):
    msgs = [mido.MetaMessage("set_tempo", tempo=1, time=0), *_note(60, 0, 480)]  # 60 million qpm
    with pytest.raises(CorruptMidiError, match="absurd tempo"):
        read_midi(_midi(tmp_path / "fast.mid", msgs))


def test_drums_only_is_rejected(tmp_path):
    with pytest.raises(CorruptMidiError, match="drums only"):
        read_midi(_midi(tmp_path / "drums.mid", _note(36, 0, 480, channel=9)))


def test_written_file_loads_in_pretty_midi(tmp_path):
    score = Score("x", (Track("a", (Note(0, 4, 60),)), Track("b", (Note(0, 8, 48),), program=32)))
    pm = pretty_midi.PrettyMIDI(str(write_midi(score, tmp_path / "two.mid")))
    assert [i.program for i in pm.instruments] == [0, 32]
    assert pm.instruments[0].notes[0].end == pytest.approx(0.5)  # 4 16ths at 120 qpm
