"""Bach chorales from music21's bundled corpus (scores public domain, music21 BSD).

All MusicXML files under music21's ``corpus/bach`` are copied untouched; reading keeps
the four-part chorales with their voices labelled S/A/T/B (instrumental doublings such
as horn parts are left out) and skips the rest with a reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import music21
from tqdm import tqdm

from tunelab.corpora import Parsed
from tunelab.music.constants import SATB
from tunelab.music.music21_io import score_from_music21

VOICE_WORDS = {"S": "soprano", "A": "alto", "T": "tenor", "B": "bass"}


def _source_files() -> list[Path]:
    return sorted(
        Path(p) for p in music21.corpus.getComposer("bach")
        if str(p).endswith((".mxl", ".xml"))
    )


def fetch(dest: Path, cfg: Any) -> dict:
    files = _source_files()
    for p in tqdm(files, desc="bach: copy", unit="file", leave=False):
        shutil.copyfile(p, dest / p.name)
    return {
        "source": "music21 corpus, corpus/bach (*.mxl, *.xml)",
        "version": f"music21 {music21.__version__}",
        "license": "scores public domain; music21 corpus BSD-3-Clause",
    }


def satb_parts(m21: music21.stream.Score) -> list[tuple[music21.stream.Part, str]] | None:
    """The S, A, T, B parts by name, else by order for exactly four parts, else None."""
    by_voice: dict[str, music21.stream.Part] = {}
    for part in m21.parts:
        label = f"{part.partName or ''} {part.id or ''}".lower()
        for v, word in VOICE_WORDS.items():
            if word in label and v not in by_voice:
                by_voice[v] = part
    if len(by_voice) == 4:
        return [(by_voice[v], v) for v in SATB]
    if len(m21.parts) == 4:
        return list(zip(m21.parts, SATB, strict=True))
    return None


def units(raw_dir: Path, cfg: Any) -> list[str]:
    """The MusicXML file names, sorted."""
    return sorted(p.name for p in raw_dir.iterdir() if p.suffix in (".mxl", ".xml"))


def read_unit(raw_dir: Path, cfg: Any, name: str) -> Iterator[Parsed]:
    path = raw_dir / name
    try:
        m21 = music21.converter.parse(path)
    except Exception as e:  # music21 raises many types on malformed MusicXML
        yield Parsed(path.name, skipped=f"unparseable MusicXML: {type(e).__name__}: {e}")
        return
    parts = satb_parts(m21)
    if parts is None:
        yield Parsed(path.name, skipped=f"not a four-part chorale ({len(m21.parts)} parts)")
        return
    score = score_from_music21(m21, path.stem, cfg.steps_per_quarter, parts, path.name)
    yield Parsed(path.name, score=score)

