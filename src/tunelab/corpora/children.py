"""Children's songs: the ``kinder`` tunes of the Essen folk song collection in music21.

The Essen collection is licensed for research use; music21 ships it as ABC files
(``corpus/essenFolksong/kinder*.abc``, one tune per ``X:`` record).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import music21

from tunelab.corpora import Parsed
from tunelab.music.music21_io import score_from_music21


def _source_files() -> list[Path]:
    return sorted(
        Path(p) for p in music21.corpus.getPaths()
        if "essenFolksong" in str(p) and Path(p).name.startswith("kinder") and str(p).endswith(".abc")
    )


def fetch(dest: Path, cfg: Any) -> dict:
    for p in _source_files():
        shutil.copyfile(p, dest / p.name)
    return {
        "source": "music21 corpus, corpus/essenFolksong/kinder*.abc (Essen folk song collection)",
        "version": f"music21 {music21.__version__}",
        "license": "Essen Folksong Collection: research use (Schaffrath 1995)",
    }


def units(raw_dir: Path, cfg: Any) -> list[str]:
    """The ABC file names, sorted (a file holds many tunes; music21 parses it whole)."""
    return sorted(p.name for p in raw_dir.glob("*.abc"))


def read_unit(raw_dir: Path, cfg: Any, name: str) -> Iterator[Parsed]:
    path = raw_dir / name
    try:
        opus = music21.converter.parse(path)
    except Exception as e:
        yield Parsed(path.name, skipped=f"unparseable ABC: {type(e).__name__}: {e}")
        return
    scores = opus.scores if isinstance(opus, music21.stream.Opus) else [opus]
    for i, m21 in enumerate(scores):
        number = m21.metadata.number if m21.metadata and m21.metadata.number else i + 1
        source = f"{path.name}#X:{number}"
        if not m21.parts or not m21.parts[0].flatten().notes:
            yield Parsed(source, skipped="tune has no notes")
            continue
        piece_id = f"{path.stem}_{number}"
        yield Parsed(source, score=score_from_music21(
            m21, piece_id, cfg.steps_per_quarter, [(m21.parts[0], "melody")], source))

