"""Corpora: one module per source, each with ``fetch`` (raw bytes + manifest) and ``read``.

``fetch(dest, cfg)`` fills ``dest`` with the untouched source files and returns the
manifest fields; ``read(raw_dir, cfg)`` yields :class:`Parsed` records, one per piece or
per unreadable file, so one bad file never sinks a corpus. Reading is cut into independent
``units(raw_dir, cfg)`` (a file, usually; small and picklable) that ``read_unit(raw_dir,
cfg, unit)`` reads, so the extract stage can read them in parallel workers; ``read`` is
every unit in order (:meth:`CorpusModule.read`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tunelab.music.score import Score


@dataclass(frozen=True)
class Parsed:
    """One outcome of reading a source file: a score, or the reason it was skipped."""

    source: str  # path relative to the raw corpus folder
    score: Score | None = None
    skipped: str | None = None  # one-line reason when score is None


@dataclass(frozen=True)
class CorpusModule:
    kind: str
    fetch: Callable[[Path, Any], dict]
    units: Callable[[Path, Any], list]
    read_unit: Callable[[Path, Any, Any], Iterator[Parsed]]

    def read(self, raw_dir: Path, cfg: Any) -> Iterator[Parsed]:
        """Every unit of the corpus read in order in this process, with a progress bar."""
        for unit in tqdm(self.units(raw_dir, cfg), desc=f"{self.kind}: parse", unit="file"):
            yield from self.read_unit(raw_dir, cfg, unit)


KINDS = ("bach", "children", "jazz", "jsb", "lakh", "maestro", "midi_dir")


def corpus_module(kind: str) -> CorpusModule:
    """The fetch/units/read_unit of a corpus kind (one of :data:`KINDS`)."""
    if kind not in KINDS:
        raise KeyError(f"unknown corpus kind {kind!r}; choose one of {', '.join(KINDS)}")
    mod = import_module(f"tunelab.corpora.{kind}")
    return CorpusModule(kind, fetch=mod.fetch, units=mod.units, read_unit=mod.read_unit)


def split_of(piece_id: str, valid: float, test: float) -> str:
    """Deterministic split from a hash of the piece id (never by window)."""
    u = int(hashlib.sha256(piece_id.encode()).hexdigest()[:12], 16) / 16**12
    return "test" if u < test else "valid" if u < test + valid else "train"
