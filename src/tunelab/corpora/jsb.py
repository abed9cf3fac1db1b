"""JSB Chorales benchmark split (Boulanger-Lewandowski et al. 2012), 229/76/77.

Each chorale is a list of 16th-note steps of four MIDI pitches (-1, null or NaN =
silent; the published file uses -1), as
published by czhuang/JSB-Chorales-dataset. The official split is kept, never re-drawn.
Repeated pitches in a voice are merged into one note: the format carries no ties.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunelab.corpora import Parsed
from tunelab.corpora.download import fetch_pinned, verify_sha256
from tunelab.music.constants import DEFAULT_VELOCITY, SATB
from tunelab.music.score import Note, Score, Track

COMMIT = "9a7f733"
URL = f"https://raw.githubusercontent.com/czhuang/JSB-Chorales-dataset/{COMMIT}/Jsb16thSeparated.json"
FILE = "Jsb16thSeparated.json"
SHA256 = "79294cc374f9252e95ef4b703161524c1c53dc1f712c236f00f1c1f5d54af5a7"
SPLITS = {"train": 229, "valid": 76, "test": 77}


def fetch(dest: Path, cfg: Any) -> dict:
    origin = fetch_pinned(URL, f"jsb/{FILE}", cfg.mirror_path, dest / FILE)
    verify_sha256(dest / FILE, SHA256, origin)
    return {
        "source": origin,
        "version": f"czhuang/JSB-Chorales-dataset@{COMMIT}",
        "license": "research benchmark (Boulanger-Lewandowski, Bengio, Vincent, ICML 2012)",
    }


def grid_to_tracks(steps: list[list[float | None]]) -> tuple[Track, ...]:
    """Four voices from a (T, 4) pitch grid, merging repeats of a pitch into one note."""
    tracks = []
    for v, name in enumerate(SATB):
        notes, pitch, start = [], None, 0
        for t, chord in enumerate([*steps, [None] * 4]):
            p = chord[v] if v < len(chord) else None
            p = None if p is None or p != p or p < 0 else int(p)  # -1/NaN mean silent
            if p != pitch:
                if pitch is not None:
                    notes.append(Note(start, t, pitch, DEFAULT_VELOCITY))
                pitch, start = p, t
        tracks.append(Track(name, tuple(notes)))
    return tuple(tracks)


def units(raw_dir: Path, cfg: Any) -> list[str]:
    """The one JSON file (all 382 chorales; reading it is quick)."""
    if cfg.steps_per_quarter != 4:
        raise ValueError(
            f"corpus.steps_per_quarter={cfg.steps_per_quarter}: JSB is on a fixed 16th grid; use 4")
    return [FILE]



def read_unit(raw_dir: Path, cfg: Any, name: str) -> Iterator[Parsed]:
    with open(raw_dir / name) as f:
        data = json.load(f)
    for split in SPLITS:
        for i, steps in enumerate(data[split]):
            source = f"{FILE}#{split}/{i}"
            if not steps:
                yield Parsed(source, skipped="empty chorale")
                continue
            yield Parsed(source, score=Score(
                id=f"jsb_{split}_{i:03d}", tracks=grid_to_tracks(steps), steps_per_quarter=4,
                source=source, meta={"split": split}))
