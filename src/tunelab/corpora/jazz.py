"""Weimar Jazz Database solos (ODbL 1.0; Pfleiderer et al., "Inside the Jazzomat", 2017).

456 solos as CSV (melody with bar/beat/tatum annotations, and a beat track with chord
symbols and bass pitch per beat), as exported by the Jazz Transformer project. Notes are
placed on the *annotated* metrical grid, not on raw seconds, so swing and tempo drift
don't smear the grid: step = beat index * steps_per_quarter + round((tatum - 1) /
division * steps_per_quarter). Each solo becomes a score with a ``solo`` track, a
``bass`` track (one note per annotated beat) and the chord symbols.
"""

from __future__ import annotations

import csv
import math
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunelab.corpora import Parsed
from tunelab.corpora.download import (
    ChecksumMismatchError,
    digest_of_digests,
    fetch_pinned,
    file_digests,
    verify_sha256,
)
from tunelab.music.constants import DEFAULT_VELOCITY
from tunelab.music.score import ChordSymbol, Note, Score, TimeSignature, Track

COMMIT = "eb77f0971e653d7208ed708f704b4d3d4b3eeff0"
URL = f"https://github.com/slSeanWU/jazz_transformer/archive/{COMMIT}.tar.gz"
MIRROR_ARCHIVE = "wjazzd/wjazzd-mcsv.tar.gz"
MIRROR_ARCHIVE_SHA256 = "8fd2b2e5f28bccac6939652436548ef940dc46bc00f68e33557a1662f1e2981e"
# sha256 over the sorted `sha256  path` lines of all 912 CSVs: holds for the upstream
# archive and the mirror repack alike (see digest_of_digests).
FILES_DIGEST = "1f2d91f35d8784bec9fad6f83e649c9ff788f640960b0eb5565bcc45dda89c59"
NUM_FILES = 912
_MEMBER = re.compile(r"(?:^|/)(mcsv_(?:melody|beat)/[^/]+\.csv)$")


def fetch(dest: Path, cfg: Any) -> dict:
    archive = dest / ".archive.tar.gz"
    origin = fetch_pinned(URL, MIRROR_ARCHIVE, cfg.mirror_path, archive)
    if origin != URL:
        verify_sha256(archive, MIRROR_ARCHIVE_SHA256, origin)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            m = _MEMBER.search(member.name)
            if member.isfile() and m:
                out = dest / m.group(1)
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(out, "wb") as f:
                    f.write(src.read())
    archive.unlink()
    digests = file_digests(dest)
    if len(digests) != NUM_FILES or digest_of_digests(digests) != FILES_DIGEST:
        raise ChecksumMismatchError(
            f"jazz: the {len(digests)} CSVs from {origin} do not match the pinned sha256 of "
            f"the {NUM_FILES} WJazzD files; the archive is corrupt or another version"
        )
    return {
        "source": origin,
        "version": f"slSeanWU/jazz_transformer@{COMMIT} (mcsv_melody/, mcsv_beat/)",
        "license": "Open Database License (ODbL) 1.0; cite Pfleiderer et al., Inside the Jazzomat, 2017",
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _step_in_beat(tatum: int, division: int, spq: int) -> int:
    return int(math.floor((tatum - 1) / max(division, 1) * spq + 0.5))


def solo_to_score(melody_csv: Path, beat_csv: Path, steps_per_quarter: int) -> Score:
    """Build one solo's score from its melody and beat-track CSVs.

    Raises:
        ValueError: a row with missing or non-numeric grid fields.
    """
    spq = steps_per_quarter
    beats = _rows(beat_csv)
    if not beats:
        raise ValueError("empty beat track")
    # Absolute beat index of each (bar, beat); a partial first bar keeps its offset so
    # bar lines land on multiples of the bar length.
    first_beat = int(beats[0]["beat"]) - 1
    index = {(int(r["bar"]), int(r["beat"])): first_beat + i for i, r in enumerate(beats)}
    sigs, chords, bass = [], [], []
    for r in beats:
        b = index[(int(r["bar"]), int(r["beat"]))]
        if int(r["beat"]) == 1 or not sigs:
            sig = TimeSignature(0 if not sigs else b * spq, int(r["period"]), 4)
            if not sigs or (sigs[-1].numerator, sigs[-1].denominator) != (sig.numerator, 4):
                sigs.append(sig)
        figure = (r.get("chord") or "").strip()
        if figure and (not chords or chords[-1].figure != figure):
            chords.append(ChordSymbol(b * spq, figure))
        pitch = (r.get("bass") or "").strip()
        if pitch and pitch.lower() != "nan":
            bass.append(Note(b * spq, (b + 1) * spq, int(float(pitch)), DEFAULT_VELOCITY))
    solo = []
    for r in _rows(melody_csv):
        key = (int(r["bar"]), int(r["beat"]))
        b = index.get(key)
        if b is None:  # beat missing from the track: count from the bar's first beat
            b = index.get((key[0], 1), first_beat) + key[1] - 1
        start = b * spq + _step_in_beat(int(r["tatum"]), int(r["division"]), spq)
        length = float(r["duration"]) / float(r["beat_duration"]) * spq
        end = max(start + 1, start + int(math.floor(length + 0.5)))
        velocity = DEFAULT_VELOCITY
        solo.append(Note(start, end, int(float(r["pitch"])), velocity))
    if not solo:
        raise ValueError("solo has no notes")
    qpm = 60.0 / (sum(float(r["duration"]) for r in beats) / len(beats))
    return Score(
        id=melody_csv.name.removesuffix("_FINAL.csv"),
        tracks=(Track("solo", tuple(solo), program=65), Track("bass", tuple(bass), program=32)),
        steps_per_quarter=spq,
        qpm=round(qpm, 2),
        time_signatures=tuple(sigs),
        chords=tuple(chords),
        source=f"mcsv_melody/{melody_csv.name}",
    )


def units(raw_dir: Path, cfg: Any) -> list[str]:
    """The solos' melody CSV names, sorted."""
    return sorted(p.name for p in (raw_dir / "mcsv_melody").glob("*_FINAL.csv"))


def read_unit(raw_dir: Path, cfg: Any, name: str) -> Iterator[Parsed]:
    path = raw_dir / "mcsv_melody" / name
    rel = f"mcsv_melody/{name}"
    beat = raw_dir / "mcsv_beat" / name.replace("_FINAL.csv", "_FINAL_beattrack.csv")
    if not beat.exists():
        yield Parsed(rel, skipped=f"no beat track {beat.name}")
        return
    try:
        score = solo_to_score(path, beat, cfg.steps_per_quarter)
    except (ValueError, KeyError) as e:
        yield Parsed(rel, skipped=f"bad CSV: {type(e).__name__}: {e}")
        return
    yield Parsed(rel, score=score)

