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
