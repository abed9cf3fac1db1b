"""Any folder of .mid/.midi files a user points at (``corpus.path``), searched recursively."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tunelab.corpora import Parsed
from tunelab.music.midi_io import CorruptMidiError, read_midi

SUFFIXES = (".mid", ".midi")


def midi_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def fetch(dest: Path, cfg: Any) -> dict:
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"corpus.path={root} is not a folder; point it at your MIDI folder")
    files = midi_files(root)
    if not files:
        raise FileNotFoundError(f"corpus.path={root} holds no .mid/.midi files")
    for p in tqdm(files, desc="midi_dir: copy", unit="file", leave=False):
        out = dest / p.relative_to(root)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, out)
    return {"source": str(root.resolve()), "version": "user folder", "license": "the user's"}


def units(raw_dir: Path, cfg: Any) -> list[str]:
    """The MIDI files' paths relative to ``raw_dir``, sorted."""
    return [p.relative_to(raw_dir).as_posix() for p in midi_files(raw_dir)]


def read_unit(raw_dir: Path, cfg: Any, rel: str) -> Iterator[Parsed]:
    try:
        score = read_midi(raw_dir / rel, cfg.steps_per_quarter, piece_id=rel.rsplit(".", 1)[0])
    except (CorruptMidiError, OSError) as e:
        yield Parsed(rel, skipped=str(e))
        return
    yield Parsed(rel, score=score)

