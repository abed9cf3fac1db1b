"""Scores on disk: gzipped JSON lines that round-trip and are byte-stable across runs."""

from __future__ import annotations

import os

from conftest import score_of
from tunelab.music.score import load_scores, save_scores


def test_saved_scores_round_trip_and_repeat_byte_for_byte(tmp_path):
    scores = [score_of([(60, 0, 4), (64, 4, 8)]), score_of([(48, 0, 16)], ts=(3, 4))]
    save_scores(tmp_path / "a.jsonl.gz", scores)
    os.utime(tmp_path / "a.jsonl.gz", (0, 0))  # a later run: the header must not carry the time
    save_scores(tmp_path / "b.jsonl.gz", scores)
    assert load_scores(tmp_path / "a.jsonl.gz") == scores
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_notes_from_columns_are_the_checked_notes():
    import numpy as np
    import pytest

    from tunelab.music.score import BadNoteError, Note, Track, notes_from_columns, valid_note_columns

    cols = ([4, 0, 0], [8, 4, 2], [60, 62, 60], [80, 0, 127])
    fast = notes_from_columns(*cols)
    assert fast == tuple(map(Note, *cols)) and all(type(n) is Note for n in fast)
    assert Track("t", fast) == Track("t", tuple(map(Note, *cols)))
    from tunelab.music.score import sorted_track

    ordered = Track("t", fast, 3, True)
    same = sorted_track("t", ordered.notes, 3, True)
    assert same == ordered and same.notes is ordered.notes and type(same) is Track
    assert valid_note_columns(*map(np.asarray, cols))
    bads = (([0], [0], [60], [80]), ([-1], [2], [60], [80]), ([0], [2], [128], [80]), ([0], [2], [60], [128]))
    for bad in bads:
        assert not valid_note_columns(*map(np.asarray, bad))
        with pytest.raises(BadNoteError):
            Note(*(c[0] for c in bad))


def test_to_dict_is_asdict_with_notes_as_rows_and_from_dict_checks_every_note():
    from dataclasses import asdict

    import pytest

    from tunelab.music.score import BadNoteError, ChordSymbol, Note, Score, TimeSignature, Track

    score = Score("x", (Track("a", (Note(4, 6, 62, 90), Note(0, 2, 60)), 5, True), Track("b", ())), 12, 97.5,
                  (TimeSignature(0, 3, 4), TimeSignature(12)), (ChordSymbol(0, "C7"),), "src",
                  {"split": "train", "nested": [1, {"a": (2, 3)}]})
    reference = asdict(score)
    reference["tracks"] = [{"name": t.name, "program": t.program, "is_drum": t.is_drum,
                            "notes": [[n.start, n.end, n.pitch, n.velocity] for n in t.notes]}
                           for t in score.tracks]
    d = score.to_dict()
    assert repr(d) == repr(reference)
    assert Score.from_dict(d) == score and Score.from_dict(d).meta == score.meta
    # rows Note refuses are refused the same way; three numbers take the default velocity
    assert Score.from_dict({"id": "y", "tracks": [{"name": "t", "notes": [[0, 2, 60]]}]}).tracks[0].notes \
        == (Note(0, 2, 60),)
    for row in ([1, 1, 60, 80], [-1, 2, 60, 80], [0, 2, 128, 80], [0, 2, 60, -1], [0, 2, 60, 128]):
        with pytest.raises(BadNoteError):
            Score.from_dict({"id": "y", "tracks": [{"name": "t", "notes": [row]}]})
