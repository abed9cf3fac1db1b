"""Both MusicXML readers on every Bach file of music21's corpus: are the results equal?

Runs ``tunelab.corpora.bach.read_unit`` with ``reader="fast"`` and ``reader="music21"`` (the
reference) on each ``.mxl``/``.xml`` file of ``music21.corpus.getComposer("bach")`` and
compares what they yield: the skip reason, or the Score field by field (``meta`` too, which
Score's ``==`` leaves out). Prints the counts and, for each file that differs, the first
difference; exits 1 if any file differs.

Usage: ``.venv/bin/python benchmarks/check_musicxml_equal.py [--limit N] [--files bwv1.6.mxl ...]``
(all 410 files take a few minutes: music21 is the slow side).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from tunelab.corpora import Parsed, bach
from tunelab.music.score import Score

SETTINGS = SimpleNamespace(steps_per_quarter=4)


def first_difference(a: Score, b: Score) -> str | None:
    """Where two Scores first differ (fast first, music21 second), or None when equal."""
    for name in ("id", "steps_per_quarter", "qpm", "time_signatures", "chords", "source", "meta"):
        if getattr(a, name) != getattr(b, name):
            return f"{name}: {getattr(a, name)!r} != {getattr(b, name)!r}"
    if [t.name for t in a.tracks] != [t.name for t in b.tracks]:
        return f"tracks: {[t.name for t in a.tracks]} != {[t.name for t in b.tracks]}"
    for ta, tb in zip(a.tracks, b.tracks, strict=True):
        if ta == tb:
            continue
        if len(ta.notes) != len(tb.notes):
            head = f"track {ta.name}: {len(ta.notes)} notes != {len(tb.notes)}"
        else:
            head = f"track {ta.name}"
        for i, (na, nb) in enumerate(zip(ta.notes, tb.notes, strict=False)):
            if na != nb:
                return f"{head}: note {i}: {na} != {nb}"
        return f"{head} (program/drum or trailing notes)"
    return None


def compare(fast: list[Parsed], ref: list[Parsed]) -> str | None:
    if len(fast) != len(ref):
        return f"{len(fast)} records != {len(ref)}"
    for a, b in zip(fast, ref, strict=True):
        if (a.source, a.skipped) != (b.source, b.skipped):
            return f"skipped: {a.skipped!r} != {b.skipped!r}"
        if (a.score is None) != (b.score is None):
            return "score on one side only"
        if a.score is not None and b.score is not None:
            diff = first_difference(a.score, b.score)
            if diff:
                return diff
    return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="first N files by name (0 = all)")
    ap.add_argument("--files", nargs="*", default=[], help="only these file names")
    args = ap.parse_args(argv)
    files = bach._source_files()
    if args.files:
        files = [p for p in files if p.name in set(args.files)]
    if args.limit:
        files = files[: args.limit]
    equal, skipped_both, different = 0, 0, []
    seconds = {"fast": 0.0, "music21": 0.0}
    for path in files:
        out = {}
        for reader in ("fast", "music21"):
            t0 = time.perf_counter()
            out[reader] = list(bach.read_unit(Path(path).parent, SETTINGS, path.name, reader=reader))
            seconds[reader] += time.perf_counter() - t0
        diff = compare(out["fast"], out["music21"])
        if diff is None:
            equal += 1
            skipped_both += any(p.skipped for p in out["fast"])
        else:
            different.append((path.name, diff))
            print(f"DIFFERENT {path.name}: {diff}", flush=True)
    print(f"files: {len(files)}  equal: {equal} (of which skipped by both, same reason: {skipped_both})  "
          f"different: {len(different)}")
    print(f"read_unit seconds: fast {seconds['fast']:.2f}, music21 {seconds['music21']:.2f} "
          "(music21 may load its pickle cache)")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
