"""Preprocessing throughput on the Bach chorales: tunelab against MusPy (and MusPy + miditok).

Each side reads the same MusicXML files from music21's corpus and turns them into tokens:

* ``tunelab``: ``music21.converter.parse`` -> ``satb_parts`` + ``score_from_music21`` (4 steps
  per quarter) -> ``extract_melodies`` + ``squash`` -> ``MelodyOneHotEncoding().encode`` per
  melody and ``PerformanceEncoding().encode`` of the score.
* ``muspy``: ``muspy.read_musicxml`` -> ``adjust_resolution(4)`` -> ``to_pitch_representation``
  per track (the nearest thing to a per-voice melody) and ``to_event_representation`` of the
  whole piece with velocities (MusPy's Performance-RNN-like events). No melody extraction.
* ``miditok``: miditok reads MIDI only (via symusic), so the piece is read by
  ``muspy.read_musicxml``, written to MIDI bytes in memory, loaded with
  ``symusic.Score.from_midi`` and tokenized by ``miditok.MIDILike`` (one token stream).

Sides run in turn within each repeat, their order reversed every other repeat (the machine
is shared and noisy); medians over repeats are reported. "notes" are the sounding notes
(ties merged) of the piece as each side parsed it and passed to its encoders. See README.md.

Usage: ``.venv/bin/python benchmarks/bench_preprocess.py [--limit N] [--repeat R] [--out F.json]``
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import miditok
import music21
import muspy
import numpy as np
import symusic
from tqdm import tqdm

from common import write_result
from tunelab.corpora.bach import _source_files, satb_parts
from tunelab.encodings.melody_onehot import MelodyOneHotEncoding
from tunelab.encodings.performance import PerformanceEncoding
from tunelab.music.melody import extract_melodies, squash
from tunelab.music.music21_io import score_from_music21

STEPS_PER_QUARTER = 4
PHASES = ("parse", "convert", "extract", "encode")
SIDES = ("tunelab", "muspy", "miditok")
BASELINES = ("muspy", "miditok")


@dataclass
class SideRun:
    """One pass of one side over all files: counts and seconds spent per phase."""

    side: str
    pieces: int = 0
    notes: int = 0
    tokens: int = 0
    skipped: int = 0  # parsed, but not converted (tunelab: not a four-part chorale)
    phase_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @property
    def total_s(self) -> float:
        return sum(self.phase_s.values())

    def add_piece(self, stamps: tuple[float, float, float, float], notes: int, tokens: int) -> None:
        """Count one baseline piece timed parse | convert | encode by four perf_counter stamps."""
        t0, t1, t2, t3 = stamps
        self.phase_s["parse"] += t1 - t0
        self.phase_s["convert"] += t2 - t1
        self.phase_s["encode"] += t3 - t2
        self.pieces += 1
        self.notes += notes
        self.tokens += tokens


Tick = Callable[[], None]


def run_tunelab(files: Sequence[Path], tick: Tick, m21_cache: bool = False) -> SideRun:
    """tunelab's extract stage on ``files`` plus both encodings (see the module docstring).

    Args:
        files: MusicXML files.
        tick: Called once per file (progress).
        m21_cache: Let music21 load its pickled parse of a file when it has one (what a
            re-run of ``tunelab extract`` gets); by default every file is parsed from XML.
    """
    run = SideRun("tunelab")
    melody_enc, perf_enc = MelodyOneHotEncoding(), PerformanceEncoding()
    ph = run.phase_s
    for path in files:
        t0 = time.perf_counter()
        m21 = music21.converter.parse(path, forceSource=not m21_cache)
        t1 = time.perf_counter()
        ph["parse"] += t1 - t0
        run.pieces += 1
        parts = satb_parts(m21)
        if parts is None:
            run.skipped += 1
            ph["convert"] += time.perf_counter() - t1
            tick()
            continue
        score = score_from_music21(m21, path.stem, STEPS_PER_QUARTER, parts, path.name)
        t2 = time.perf_counter()
        melodies, _ = extract_melodies(score)
        melodies = [squash(m) for m in melodies]
        t3 = time.perf_counter()
        tokens = sum(len(melody_enc.encode(m)) for m in melodies) + len(perf_enc.encode(score))
        t4 = time.perf_counter()
        ph["convert"] += t2 - t1
        ph["extract"] += t3 - t2
        ph["encode"] += t4 - t3
        run.notes += score.num_notes
        run.tokens += tokens
        tick()
    return run


def run_muspy(files: Sequence[Path], tick: Tick) -> SideRun:
    """MusPy's reader and its pitch (per track) and event (whole piece) representations."""
    run = SideRun("muspy")
    for path in files:
        t0 = time.perf_counter()
        music = muspy.read_musicxml(path)
        t1 = time.perf_counter()
        music.adjust_resolution(STEPS_PER_QUARTER)
        t2 = time.perf_counter()
        tokens = sum(
            len(muspy.to_pitch_representation(muspy.Music(resolution=music.resolution, tracks=[track])))
            for track in music.tracks
        )
        tokens += len(muspy.to_event_representation(music, encode_velocity=True))
        t3 = time.perf_counter()
        run.add_piece((t0, t1, t2, t3), sum(len(t.notes) for t in music.tracks), tokens)
        tick()
    return run


def make_miditok_tokenizer() -> miditok.MIDILike:
    """MIDILike (NoteOn/NoteOff/TimeShift/Velocity, 32 velocities), all tracks in one stream."""
    config = miditok.TokenizerConfig(use_velocities=True, num_velocities=32, use_programs=True,
                                     one_token_stream_for_programs=True)
    return miditok.MIDILike(config)


def run_miditok(files: Sequence[Path], tick: Tick) -> SideRun:
    """MusPy's reader, MIDI bytes in memory, symusic, then miditok's MIDILike tokens."""
    run = SideRun("miditok")
    tokenizer = make_miditok_tokenizer()
    for path in files:
        t0 = time.perf_counter()
        music = muspy.read_musicxml(path)
        t1 = time.perf_counter()
        # muspy 0.5.0 writes sharp-spelled key names mido rejects ('A#' for B-flat major);
        # MIDILike ignores key signatures anyway.
        music.key_signatures = []
        buf = io.BytesIO()
        muspy.to_mido(music).save(file=buf)
        score = symusic.Score.from_midi(buf.getvalue())
        t2 = time.perf_counter()
        seq = tokenizer.encode(score)
        t3 = time.perf_counter()
        tokens = sum(len(s) for s in seq) if isinstance(seq, list) else len(seq)
        run.add_piece((t0, t1, t2, t3), sum(len(t.notes) for t in music.tracks), tokens)
        tick()
    return run


def run_side(side: str, files: Sequence[Path], tick: Tick, m21_cache: bool) -> SideRun:
    if side == "tunelab":
        return run_tunelab(files, tick, m21_cache)
    if side == "muspy":
        return run_muspy(files, tick)
    if side == "miditok":
        return run_miditok(files, tick)
    raise ValueError(f"unknown side {side!r}; choose from {SIDES}")


def summarize(runs: dict[str, list[SideRun]]) -> dict[str, dict]:
    """Medians over repeats per side, and tunelab / baseline ratios."""
    out: dict[str, dict] = {}
    for side, rs in runs.items():
        total = statistics.median(r.total_s for r in rs)
        first = rs[0]
        out[side] = {
            "pieces": first.pieces,
            "notes": first.notes,
            "tokens": first.tokens,
            "skipped": first.skipped,
            "median_s": total,
            "pieces_per_s": first.pieces / total,
            "notes_per_s": first.notes / total,
            "phase_median_s": {p: statistics.median(r.phase_s[p] for r in rs) for p in PHASES},
            "repeat_s": [r.total_s for r in rs],
        }
    if "tunelab" in out:
        for side in BASELINES:
            if side in out:
                out[side]["ratio_tunelab_over_this"] = {
                    k: out["tunelab"][k] / out[side][k] for k in ("pieces_per_s", "notes_per_s")
                }
    return out


def format_table(summary: dict[str, dict]) -> str:
    """Throughput table, ratios and the per-phase split."""
    lines = [
        f"{'side':<9} {'pieces':>6} {'notes':>7} {'tokens':>8} {'median s':>9} {'pieces/s':>9} "
        f"{'notes/s':>9} {'tl/x pieces/s':>13} {'tl/x notes/s':>12}"
    ]
    for side, s in summary.items():
        ratio = s.get("ratio_tunelab_over_this")
        rp = f"{ratio['pieces_per_s']:.2f}" if ratio else "-"
        rn = f"{ratio['notes_per_s']:.2f}" if ratio else "-"
        lines.append(
            f"{side:<9} {s['pieces']:>6} {s['notes']:>7} {s['tokens']:>8} {s['median_s']:>9.2f} "
            f"{s['pieces_per_s']:>9.1f} {s['notes_per_s']:>9.0f} {rp:>13} {rn:>12}"
        )
    lines.append("")
    lines.append("median seconds per phase (share of the side's total)")
    lines.append(f"{'side':<9} " + " ".join(f"{p:>15}" for p in PHASES))
    for side, s in summary.items():
        ph = s["phase_median_s"]
        total = sum(ph.values()) or 1.0
        cells = [f"{ph[p]:7.2f} ({100 * ph[p] / total:3.0f}%)" if ph[p] else f"{'-':>15}" for p in PHASES]
        lines.append(f"{side:<9} " + " ".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


def machine_info() -> dict:
    """CPU and library versions, for the JSON record."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "usable_cores": cores,
        "music21": music21.__version__,
        "muspy": muspy.__version__,
        "symusic": getattr(symusic, "__version__", "?"),
        "numpy": np.__version__,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=100, help="first N files, sorted by name (0 = all 410)")
    ap.add_argument("--repeat", type=int, default=3, help="passes per side (median reported)")
    ap.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    ap.add_argument("--m21-cache", action="store_true",
                    help="let music21 load its pickled parses (default: parse every file from XML)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    files = _source_files()
    if args.limit:
        files = files[: args.limit]
    # Warm-up (imports, music21's lazy set-up, tokenizer construction), not timed.
    for side in args.sides:
        run_side(side, files[:2], lambda: None, args.m21_cache)
    runs: dict[str, list[SideRun]] = {side: [] for side in args.sides}
    total = args.repeat * len(args.sides) * len(files)
    with tqdm(total=total, unit="file", disable=args.no_progress, leave=False, file=sys.stderr) as bar:
        for r in range(args.repeat):
            order = args.sides if r % 2 == 0 else list(reversed(args.sides))
            for side in order:
                bar.set_description(f"repeat {r + 1}/{args.repeat} {side}")
                runs[side].append(run_side(side, files, bar.update, args.m21_cache))
    summary = summarize(runs)
    print(f"{len(files)} Bach MusicXML files, {args.repeat} repeats, median; "
          f"music21 {'pickle cache' if args.m21_cache else 'parses from XML'}")
    print(format_table(summary))
    result = {
        "files": len(files),
        "repeat": args.repeat,
        "m21_cache": args.m21_cache,
        "machine": machine_info(),
        "summary": summary,
        "runs": {side: [asdict(r) for r in rs] for side, rs in runs.items()},
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
