"""MAESTRO v3.0.0, MIDI only (Hawthorne et al., ICLR 2019; CC BY-NC-SA 4.0).

1,276 virtuoso piano performances (about 200 hours) recorded on Yamaha Disklaviers at the
International Piano-e-Competition, with key velocities and pedal positions. The Music
Transformer paper trains on it. Read as Magenta's score2perf does for its MAESTRO problems:

* the **official** train/validation/test split of ``maestro-v3.0.0.csv`` (pieces of one
  composition stay in one split), "validation" becoming tunelab's "valid", never the hash
  split;
* velocities kept as played;
* the sustain pedal applied (``corpus.sustain``): notes held by the pedal last until it
  lifts or the key is struck again (:mod:`tunelab.music.sustain`).

The archive is checked against its pinned size and sha256 whether it comes from the URL
or from a mirror (``maestro/maestro-v3.0.0-midi.zip`` under ``TUNELAB_DATA_MIRROR``).
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from tunelab.corpora import Parsed
from tunelab.corpora.download import fetch_pinned, safe_member_path, verify_archive
from tunelab.corpora.midi_dir import midi_files
from tunelab.music.midi_io import CorruptMidiError, read_midi

VERSION = "v3.0.0"
ROOT = f"maestro-{VERSION}"  # the archive's top folder; files are stored without it
ARCHIVE = f"{ROOT}-midi.zip"
URL = f"https://storage.googleapis.com/magentadata/datasets/maestro/{VERSION}/{ARCHIVE}"
MIRROR_ARCHIVE = f"maestro/{ARCHIVE}"
# As pinned by MusPy (muspy/datasets/maestro.py, MAESTRODatasetV3) and by others who
# downloaded it; Google publishes no digest of its own.
SIZE = 58_416_533
SHA256 = "70470ee253295c8d2c71e6d9d4a815189e35c89624b76d22fce5a019d5dde12c"
METADATA_CSV = f"{ROOT}.csv"
METADATA_JSON = f"{ROOT}.json"
SPLITS = {"train": "train", "validation": "valid", "test": "test"}  # MAESTRO's -> tunelab's
LICENSE = ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0 (CC BY-NC-SA 4.0); cite "
           "Hawthorne et al., Enabling Factorized Piano Music Modeling and Generation with the "
           "MAESTRO Dataset, ICLR 2019")


def fetch(dest: Path, cfg: Any) -> dict:
    archive = dest / ".archive.zip"
    origin = fetch_pinned(URL, MIRROR_ARCHIVE, cfg.mirror_path, archive)
    verify_archive(archive, SIZE, SHA256, origin)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            out = safe_member_path(dest, info.filename, ROOT)
            if out is None or info.is_dir():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as f:
                shutil.copyfileobj(src, f)
    archive.unlink()
    if not (dest / METADATA_CSV).is_file() and not (dest / METADATA_JSON).is_file():
        raise FileNotFoundError(f"{origin}: no {ROOT}/{METADATA_CSV} or {METADATA_JSON} in the archive")
    return {"source": origin, "version": f"MAESTRO {VERSION} (MIDI only, {ARCHIVE})", "license": LICENSE}


def metadata(raw_dir: Path) -> dict[str, dict[str, str]]:
    """MAESTRO's table, keyed by ``midi_filename`` (e.g. ``2018/MIDI-...midi``): from the
    CSV, else from the JSON (column -> {row index -> value}, as pandas writes it)."""
    if (raw_dir / METADATA_CSV).is_file():
        with open(raw_dir / METADATA_CSV, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        with open(raw_dir / METADATA_JSON, encoding="utf-8") as f:
            table = json.load(f)
        rows = [{col: str(table[col][i]) for col in table} for i in table["midi_filename"]]
    return {r["midi_filename"]: r for r in rows}


def units(raw_dir: Path, cfg: Any) -> list[tuple[str, dict[str, str] | None, bool]]:
    """(relative path, its metadata row, whether the file is there): every MIDI file in
    order, then the rows whose file is missing."""
    rows = metadata(raw_dir)
    files = [p.relative_to(raw_dir).as_posix() for p in midi_files(raw_dir)]
    missing = sorted(rows.keys() - set(files))
    return [(rel, rows.get(rel), True) for rel in files] + [(rel, rows[rel], False) for rel in missing]


def read_unit(raw_dir: Path, cfg: Any, unit: tuple[str, dict[str, str] | None, bool]) -> Iterator[Parsed]:
    rel, row, present = unit
    if not present:
        yield Parsed(rel, skipped=f"listed in {METADATA_CSV} but not in the archive")
        return
    split = SPLITS.get(row["split"]) if row else None
    if split is None:
        why = f"split {row['split']!r} is not train/validation/test" if row else f"not in {METADATA_CSV}"
        yield Parsed(rel, skipped=why)
        return
    try:
        score = read_midi(raw_dir / rel, cfg.steps_per_quarter, piece_id=rel.rsplit(".", 1)[0],
                          sustain=bool(getattr(cfg, "sustain", True)))
    except (CorruptMidiError, OSError) as e:
        yield Parsed(rel, skipped=str(e))
        return
    meta = {"split": split, "composer": row["canonical_composer"], "title": row["canonical_title"],
            "year": int(row["year"])}
    yield Parsed(rel, score=replace(score, source=rel, meta=meta))

