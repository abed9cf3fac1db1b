"""MIDI reading: ``read_midi(reader="pretty_midi")`` (the reference) against the default
``reader="symusic"``, on the same files in one run.

The files are the extracted corpora (``data/interim/<corpus>/scores.jsonl.gz``) written to
MIDI with ``write_midi``, as the equality test in tests/music/test_midi_fast_reader.py does.
Each pass reads every file once with one reader, through the whole ``read_midi`` (header
check, parse, quantization, Score); the readers alternate, in reverse order every other
repeat, and the median pass is reported. Before timing, one untimed pass checks that both
readers give equal Scores and counts the files the symusic reader hands to pretty_midi.

Usage: ``.venv/bin/python benchmarks/bench_midi_read.py [--data DIR] [--corpora C ...]
[--limit N] [--repeat R] [--out F.json]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pretty_midi
import symusic

from common import write_result
from tunelab.music.midi_io import READERS, read_midi, read_midi_symusic, write_midi
from tunelab.music.midi_scan import NotReproducible
from tunelab.music.score import load_scores

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("bach", "children", "jazz", "jsb")


def write_corpora(data: Path, corpora: Sequence[str], limit: int, out: Path) -> list[Path]:
    """The first ``limit`` pieces (0 = all) of each corpus found under ``data``, as MIDI."""
    files = []
    for corpus in corpora:
        scores_file = data / "interim" / corpus / "scores.jsonl.gz"
        if not scores_file.is_file():
            print(f"skip {corpus}: no {scores_file}")
            continue
        scores = load_scores(scores_file)
        for i, score in enumerate(scores[:limit] if limit else scores):
            files.append(write_midi(score, out / f"{corpus}-{i:04d}.mid"))
    return files


def timed_pass(files: Sequence[Path], reader: str) -> float:
    t0 = time.perf_counter()
    for f in files:
        read_midi(f, reader=reader)
    return time.perf_counter() - t0


def run(files: Sequence[Path], repeat: int) -> dict[str, Any]:
    fell_back, unequal = [], []
    for f in files:  # untimed: equality, and which files the fast path hands over
        if read_midi(f) != read_midi(f, reader="pretty_midi"):
            unequal.append(f.name)
        try:
            read_midi_symusic(f)
        except NotReproducible as e:
            fell_back.append(f"{f.name}: {e}")
    for reader in READERS:  # warm-up
        timed_pass(files[:5], reader)
    seconds: dict[str, list[float]] = {r: [] for r in READERS}
    for r in range(repeat):
        for reader in READERS if r % 2 == 0 else READERS[::-1]:
            seconds[reader].append(timed_pass(files, reader))
    median = {r: statistics.median(s) for r, s in seconds.items()}
    return {
        "files": len(files), "repeat": repeat, "repeat_s": seconds, "median_s": median,
        "files_per_s": {r: len(files) / s for r, s in median.items()},
        "ratio_pretty_midi_over_symusic": median["pretty_midi"] / median["symusic"],
        "equal": not unequal, "unequal": unequal, "fell_back": fell_back,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "data", help="holds interim/<corpus>/scores.jsonl.gz")
    ap.add_argument("--corpora", nargs="+", default=list(CORPORA))
    ap.add_argument("--limit", type=int, default=0, help="first N pieces of each corpus (0 = all)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_corpora(args.data, args.corpora, args.limit, Path(tmp))
        if not files:
            ap.error(f"no extracted corpora under {args.data}/interim (run `tunelab extract` first)")
        result = run(files, args.repeat)
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                         "loadavg": list(os.getloadavg()), "pretty_midi": pretty_midi.__version__,
                         "symusic": symusic.__version__}
    m = result["median_s"]
    print(f"{result['files']} files, {args.repeat} repeats, median pass: "
          f"pretty_midi {m['pretty_midi']:.3f} s, symusic {m['symusic']:.3f} s "
          f"-> {result['ratio_pretty_midi_over_symusic']:.2f}x; "
          f"equal Scores: {result['equal']}; handed to pretty_midi: {len(result['fell_back'])}")
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
