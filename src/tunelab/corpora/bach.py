"""Bach chorales from music21's bundled corpus (scores public domain, music21 BSD).

All MusicXML files under music21's ``corpus/bach`` are copied untouched; reading keeps
the four-part chorales with their voices labelled S/A/T/B (instrumental doublings such
as horn parts are left out) and skips the rest with a reason. The files are read with
the fast MusicXML reader (:mod:`tunelab.music.musicxml`), which gives the Scores music21
gives (``read_unit(..., reader="music21")``, the reference), about 10x faster.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import music21
from tqdm import tqdm

from tunelab.corpora import Parsed
from tunelab.music.constants import SATB
from tunelab.music.musicxml import MusicXMLError, part_names, read_parts, score_from_named_parts

VOICE_WORDS = {"S": "soprano", "A": "alto", "T": "tenor", "B": "bass"}

P = TypeVar("P")


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


def satb_parts(parts: Sequence[P], names: Callable[[P], tuple[str | None, Any]] = part_names,
               ) -> list[tuple[P, str]] | None:
    """The S, A, T, B parts by name, else by order for exactly four parts, else None.

    ``parts`` come from either MusicXML reader (music21 ``Part`` or ``XmlPart``); ``names``
    gives a part's (part name, music21 id), searched for "soprano", "alto"...
    """
    by_voice: dict[str, P] = {}
    for part in parts:
        name, part_id = names(part)
        label = f"{name or ''} {part_id or ''}".lower()
        for v, word in VOICE_WORDS.items():
            if word in label and v not in by_voice:
                by_voice[v] = part
    if len(by_voice) == 4:
        return [(by_voice[v], v) for v in SATB]
    if len(parts) == 4:
        return list(zip(parts, SATB, strict=True))
    return None


def units(raw_dir: Path, cfg: Any) -> list[str]:
    """The MusicXML file names, sorted."""
    return sorted(p.name for p in raw_dir.iterdir() if p.suffix in (".mxl", ".xml"))


def read_unit(raw_dir: Path, cfg: Any, name: str, reader: str = "fast") -> Iterator[Parsed]:
    """One chorale; ``reader``: ``"fast"`` or ``"music21"`` (the reference, same Scores)."""
    path = raw_dir / name
    try:
        parts = read_parts(path, reader)
    except MusicXMLError as e:
        yield Parsed(path.name, skipped=f"unparseable MusicXML: {e}")
        return
    chosen = satb_parts(parts)
    if chosen is None:
        yield Parsed(path.name, skipped=f"not a four-part chorale ({len(parts)} parts)")
        return
    score = score_from_named_parts(chosen, path.stem, cfg.steps_per_quarter, path.name)
    yield Parsed(path.name, score=score)
