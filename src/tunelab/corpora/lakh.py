"""The Lakh MIDI Dataset v0.1 (Raffel 2016; CC BY 4.0): MIDI files scraped from the web.

Two variants (``corpus.variant``):

* ``full``: LMD-full, 176,581 files (the LMD page's count), each named by its MD5
  (``lmd_full/<first hex digit>/<md5>.mid``);
* ``matched``: LMD-matched, the 45,129 files matched to Million Song Dataset entries,
  stored once per matched song (``lmd_matched/A/B/C/<MSD track id>/<md5>.mid``), so one
  file can sit in several folders.

A piece is one distinct file: its id is the MD5, so a file matched to several songs is
read once (its MSD track ids in ``meta["msd_tracks"]``) and cannot land in two splits.
Splits are tunelab's hash split of that id. Files are read with the fast MIDI reader; a
corrupt or unreadable file is skipped and listed with its reason, never fatal. The archive
is checked against its pinned size and sha256 whether it comes from the URL or a mirror
(``lakh/lmd_full.tar.gz``, ``lakh/lmd_matched.tar.gz`` under ``TUNELAB_DATA_MIRROR``).
"""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from tunelab.corpora import Parsed
from tunelab.corpora.download import fetch_pinned, safe_member_path, verify_archive
from tunelab.corpora.midi_dir import midi_files
from tunelab.music.midi_io import CorruptMidiError, read_midi


class Archive(NamedTuple):
    root: str  # the archive's top folder; files are stored without it
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return f"{self.root}.tar.gz"

    @property
    def url(self) -> str:
        return f"http://hog.ee.columbia.edu/craffel/lmd/{self.name}"


# Sizes and sha256 as pinned by MusPy (muspy/datasets/lmd.py, which also gives the md5s
# 2536ce3fd2cede53ddaa264f731859ab and fb80d01c22020295bb3eeef31f1aa63a) and by others who
# downloaded them; the LMD page publishes none.
VARIANTS = {
    "full": Archive("lmd_full", 1_768_163_879,
                    "6fcfe2ac49ca08f3f214cec86ab138d4fc4dabcd7f27f491a838dae6db45a12b"),
    "matched": Archive("lmd_matched", 1_407_072_670,
                       "621ff830aed771f469e5bfa13dc12a33c6ed69090adeda63d0b5c47783af0191"),
}
LICENSE = ("Creative Commons Attribution 4.0 (CC BY 4.0); cite Colin Raffel, Learning-Based Methods "
           "for Comparing Sequences, with Applications to Audio-to-MIDI Alignment and Matching, "
           "PhD thesis, 2016")


def archive_of(cfg: Any) -> Archive:
    variant = getattr(cfg, "variant", None)
    if variant not in VARIANTS:
        raise ValueError(f"corpus.variant={variant}: choose one of {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def fetch(dest: Path, cfg: Any) -> dict:
    source = archive_of(cfg)
    archive = dest / ".archive.tar.gz"
    origin = fetch_pinned(source.url, f"lakh/{source.name}", cfg.mirror_path, archive)
    verify_archive(archive, source.size, source.sha256, origin)
    with tarfile.open(archive, "r|gz") as tar:  # one pass: 1.4-1.8 GB, ~180k members
        for member in tqdm(tar, desc=f"lakh: unpack {source.name}", unit="file", leave=False):
            out = safe_member_path(dest, member.name, source.root)
            if out is None or not member.isfile():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(out, "wb") as f:
                shutil.copyfileobj(src, f)
    archive.unlink()
    return {"source": origin, "version": f"Lakh MIDI Dataset v0.1, {source.name}",
            "variant": cfg.variant, "license": LICENSE}


def distinct_files(raw_dir: Path) -> dict[str, list[Path]]:
    """Each MD5 (file stem) and the paths holding that file, sorted."""
    by_md5: dict[str, list[Path]] = {}
    for path in midi_files(raw_dir):
        by_md5.setdefault(path.stem, []).append(path)
    return dict(sorted(by_md5.items()))


def units(raw_dir: Path, cfg: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(MD5, the relative paths holding that file) of each distinct file, by MD5."""
    return [(md5, tuple(p.relative_to(raw_dir).as_posix() for p in paths))
            for md5, paths in distinct_files(raw_dir).items()]


def read_unit(raw_dir: Path, cfg: Any, unit: tuple[str, tuple[str, ...]]) -> Iterator[Parsed]:
    md5, rels = unit
    rel = rels[0]
    try:
        score = read_midi(raw_dir / rel, cfg.steps_per_quarter, piece_id=md5,
                          sustain=bool(getattr(cfg, "sustain", False)))
    except (CorruptMidiError, OSError) as e:
        yield Parsed(rel, skipped=str(e))
        return
    except Exception as e:  # noqa: BLE001 - a web scrape: one file no parser foresaw must not sink the corpus
        yield Parsed(rel, skipped=f"unreadable MIDI: {type(e).__name__}: {e}")
        return
    matched = archive_of(cfg).root == "lmd_matched"
    meta = {"msd_tracks": [Path(r).parent.name for r in rels]} if matched else {}
    yield Parsed(rel, score=replace(score, source=rel, meta=meta))

