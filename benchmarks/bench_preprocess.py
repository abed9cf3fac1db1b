"""Preprocessing throughput on the Bach chorales: tunelab against MusPy (and MusPy + miditok);
with ``--midi``, on MIDI files, plus worker scaling and peak memory of the real stages.

Each side reads the same MusicXML files from music21's corpus and turns them into tokens:

* ``tunelab``: the fast MusicXML reader (``tunelab.music.musicxml.parse_parts``) -> ``satb_parts``
  + ``score_from_parts`` (4 steps per quarter) -> ``extract_melodies`` + ``squash`` ->
  ``MelodyOneHotEncoding().encode`` per melody and ``PerformanceEncoding().encode`` of the score.
* ``tunelab-m21``: the same with the reference reader: ``music21.converter.parse`` ->
  ``satb_parts`` + ``score_from_music21`` (the same Scores; a baseline row).
* ``muspy``: ``muspy.read_musicxml`` -> ``adjust_resolution(4)`` -> ``to_pitch_representation``
  per track (the nearest thing to a per-voice melody) and ``to_event_representation`` of the
  whole piece with velocities (MusPy's Performance-RNN-like events). No melody extraction.
* ``miditok``: miditok reads MIDI only (via symusic), so the piece is read by
  ``muspy.read_musicxml``, written to MIDI bytes in memory, loaded with
  ``symusic.Score.from_midi`` and tokenized by ``miditok.MIDILike`` (one token stream).

Sides run in turn within each repeat, their order reversed every other repeat (the machine
is shared and noisy); medians over repeats are reported. "notes" are the sounding notes
(ties merged) of the piece as each side parsed it and passed to its encoders. See README.md.

With ``--midi`` the files are MIDI made from the extracted corpora (transposed copies written
by tunelab's writer): tunelab's ``read_midi`` + melodies + both encodings against
``muspy.read_midi`` + its representations and ``symusic`` + miditok REMI, in one process;
then the real extract + tokenize stages on a folder with 1 and N workers (same bytes?) and on
a folder 10x larger, each in a fresh process that reports its peak RSS and its largest
worker's.

Usage: ``.venv/bin/python benchmarks/bench_preprocess.py [--limit N] [--repeat R] [--out F.json]``
       ``.venv/bin/python benchmarks/bench_preprocess.py --midi [--files 100] [--workers N]``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

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
from tunelab.music.midi_io import read_midi, write_midi
from tunelab.music.music21_io import score_from_music21
from tunelab.music.musicxml import parse_parts, score_from_parts
from tunelab.music.score import load_scores
from tunelab.pipeline.parallel import usable_cores

REPO = Path(__file__).resolve().parents[1]

STEPS_PER_QUARTER = 4
PHASES = ("parse", "convert", "extract", "encode")
SIDES = ("tunelab", "tunelab-m21", "muspy", "miditok")
BASELINES = ("tunelab-m21", "muspy", "miditok")


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


def run_tunelab(files: Sequence[Path], tick: Tick, m21_cache: bool = False, reader: str = "fast") -> SideRun:
    """tunelab's extract stage on ``files`` plus both encodings (see the module docstring).

    Args:
        files: MusicXML files.
        tick: Called once per file (progress).
        m21_cache: Let music21 load its pickled parse of a file when it has one (what a
            re-run of ``tunelab extract`` gets); by default every file is parsed from XML.
        reader: ``"fast"`` (side ``tunelab``) or ``"music21"`` (side ``tunelab-m21``).
    """
    run = SideRun("tunelab" if reader == "fast" else "tunelab-m21")
    melody_enc, perf_enc = MelodyOneHotEncoding(), PerformanceEncoding()
    ph = run.phase_s
    for path in files:
        t0 = time.perf_counter()
        if reader == "fast":
            parts = parse_parts(path)
        else:
            parts = list(music21.converter.parse(path, forceSource=not m21_cache).parts)
        t1 = time.perf_counter()
        ph["parse"] += t1 - t0
        run.pieces += 1
        chosen = satb_parts(parts)
        if chosen is None:
            run.skipped += 1
            ph["convert"] += time.perf_counter() - t1
            tick()
            continue
        if reader == "fast":
            score = score_from_parts(chosen, path.stem, STEPS_PER_QUARTER, path.name)
        else:
            score = score_from_music21(None, path.stem, STEPS_PER_QUARTER, chosen, path.name)
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
    if side == "tunelab-m21":
        return run_tunelab(files, tick, m21_cache, reader="music21")
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
        f"{'side':<11} {'pieces':>6} {'notes':>7} {'tokens':>8} {'median s':>9} {'pieces/s':>9} "
        f"{'notes/s':>9} {'tl/x pieces/s':>13} {'tl/x notes/s':>12}"
    ]
    for side, s in summary.items():
        ratio = s.get("ratio_tunelab_over_this")
        rp = f"{ratio['pieces_per_s']:.2f}" if ratio else "-"
        rn = f"{ratio['notes_per_s']:.2f}" if ratio else "-"
        lines.append(
            f"{side:<11} {s['pieces']:>6} {s['notes']:>7} {s['tokens']:>8} {s['median_s']:>9.2f} "
            f"{s['pieces_per_s']:>9.1f} {s['notes_per_s']:>9.0f} {rp:>13} {rn:>12}"
        )
    lines.append("")
    lines.append("median seconds per phase (share of the side's total)")
    lines.append(f"{'side':<11} " + " ".join(f"{p:>15}" for p in PHASES))
    for side, s in summary.items():
        ph = s["phase_median_s"]
        total = sum(ph.values()) or 1.0
        cells = [f"{ph[p]:7.2f} ({100 * ph[p] / total:3.0f}%)" if ph[p] else f"{'-':>15}" for p in PHASES]
        lines.append(f"{side:<11} " + " ".join(f"{c:>15}" for c in cells))
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
    midi = ap.add_argument_group("--midi: MIDI files, worker scaling and memory")
    midi.add_argument("--midi", action="store_true", help="run the MIDI benchmark instead")
    midi.add_argument("--files", type=int, default=100, help="folder for the stage runs (and 10x that)")
    midi.add_argument("--limit-midi", type=int, default=40, help="files in the one-process comparison")
    midi.add_argument("--workers", type=int, default=max(2, usable_cores()), help="N in 1 vs N workers")
    midi.add_argument("--shard-size", type=int, default=16)
    midi.add_argument("--data", type=Path, default=REPO / "data",
                      help="holds interim/<corpus>/scores.jsonl.gz")
    midi.add_argument("--corpora", nargs="+", default=["children", "jazz"])
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.midi:
        result = midi_main(args)
        write_result(args.out, result)
        return result
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


# --- MIDI: read + quantize + extract + encode, worker scaling, memory (--midi) --------------

def synthetic_midi_folder(data: Path, corpora: Sequence[str], count: int, out: Path) -> list[Path]:
    """``count`` MIDI files made from the extracted corpora's pieces, cycling through them and
    transposing each pass by another interval (-5..+6 semitones, notes kept in 0..127), written
    with tunelab's own writer."""
    per_corpus = [load_scores(data / "interim" / c / "scores.jsonl.gz") for c in corpora
                  if (data / "interim" / c / "scores.jsonl.gz").is_file()]
    # round robin over the corpora, so any prefix of the folder mixes short and long pieces
    pieces = [s for group in itertools.zip_longest(*per_corpus) for s in group if s is not None]
    if not pieces:
        raise SystemExit(f"no data/interim/<corpus>/scores.jsonl.gz under {data}; run `tunelab extract` "
                         "or pass --data")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        score, shift = pieces[i % len(pieces)], TRANSPOSITIONS[(i // len(pieces)) % len(TRANSPOSITIONS)]
        tracks = tuple(replace(t, notes=tuple(replace(n, pitch=n.pitch + shift) for n in t.notes
                                              if 0 <= n.pitch + shift <= 127)) for t in score.tracks)
        files.append(write_midi(replace(score, tracks=tracks), out / f"{i:06d}_{score.id}_{shift:+d}.mid"))
    return files


TRANSPOSITIONS = (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6)


def midi_tunelab(files: Sequence[Path]) -> tuple[int, int]:
    """tunelab's read_midi (symusic parse, note_seq quantization) + melodies + both encodings."""
    melody_enc, perf_enc = MelodyOneHotEncoding(), PerformanceEncoding()
    notes = tokens = 0
    for path in files:
        score = read_midi(path, STEPS_PER_QUARTER)
        melodies, _ = extract_melodies(score)
        tokens += sum(len(melody_enc.encode(squash(m))) for m in melodies) + len(perf_enc.encode(score))
        notes += score.num_notes
    return notes, tokens


def midi_muspy(files: Sequence[Path]) -> tuple[int, int]:
    """muspy.read_midi (mido) + adjust_resolution + pitch (per track) and event representations."""
    notes = tokens = 0
    for path in files:
        music = muspy.read_midi(path)
        music.adjust_resolution(STEPS_PER_QUARTER)
        tokens += sum(len(muspy.to_pitch_representation(muspy.Music(resolution=music.resolution, tracks=[t])))
                      for t in music.tracks)
        tokens += len(muspy.to_event_representation(music, encode_velocity=True))
        notes += sum(len(t.notes) for t in music.tracks)
    return notes, tokens


def midi_miditok(files: Sequence[Path]) -> tuple[int, int]:
    """symusic.Score (C++ parser) + miditok REMI (its own quantization to 8 positions per beat)."""
    tokenizer = miditok.REMI(miditok.TokenizerConfig(use_programs=True, one_token_stream_for_programs=True))
    notes = tokens = 0
    for path in files:
        score = symusic.Score(str(path))
        seq = tokenizer.encode(score)
        tokens += sum(len(s) for s in seq) if isinstance(seq, list) else len(seq)
        notes += score.note_num()
    return notes, tokens


MIDI_SIDES = {"tunelab": midi_tunelab, "muspy": midi_muspy, "miditok": midi_miditok}


def midi_throughput(files: Sequence[Path], repeat: int) -> dict[str, Any]:
    """Files/s per side, one process, same files, sides alternated, medians of ``repeat``."""
    for fn in MIDI_SIDES.values():
        fn(files[:2])  # warm-up
    seconds: dict[str, list[float]] = {s: [] for s in MIDI_SIDES}
    counts = {}
    for r in range(repeat):
        for side in list(MIDI_SIDES) if r % 2 == 0 else list(MIDI_SIDES)[::-1]:
            t0 = time.perf_counter()
            counts[side] = MIDI_SIDES[side](files)
            seconds[side].append(time.perf_counter() - t0)
    out: dict[str, Any] = {}
    for side, s in seconds.items():
        med = statistics.median(s)
        out[side] = {"median_s": med, "files_per_s": len(files) / med, "notes": counts[side][0],
                     "tokens": counts[side][1], "repeat_s": s}
    for side in MIDI_SIDES:
        if side != "tunelab":
            out[side]["ratio_tunelab_over_this"] = out["tunelab"]["files_per_s"] / out[side]["files_per_s"]
    return out


STAGE_RUN = """
import json, resource, sys, threading, time
import psutil
from tunelab.config import load_config
from tunelab.pipeline.extract import extract
from tunelab.pipeline.tokenize import tokenize
peak, done, me = {"worker": 0, "workers": 0}, threading.Event(), psutil.Process()
def watch():  # worker processes are the forkserver's children: sample every descendant's RSS
    while not done.wait(0.05):
        rss = []
        for p in me.children(recursive=True):
            try:
                rss.append(p.memory_info().rss)
            except psutil.Error:
                pass
        peak["worker"] = max(peak["worker"], max(rss, default=0))
        peak["workers"] = max(peak["workers"], sum(rss))
threading.Thread(target=watch, daemon=True).start()
cfg = load_config(sys.argv[1:])
t0 = time.perf_counter(); stats = extract(cfg); t1 = time.perf_counter(); tokenize(cfg, "melody_onehot")
t2 = time.perf_counter()
done.set()
print(json.dumps({"extract_s": t1 - t0, "tokenize_s": t2 - t1, "pieces": stats["pieces"],
                  "notes": stats["notes"],
                  "main_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_peak_mib": peak["worker"] / 2**20, "workers_peak_mib": peak["workers"] / 2**20}))
"""


def stage_run(folder: Path, work: Path, workers: int, shard_size: int) -> dict[str, Any]:
    """The real extract + tokenize (melody_onehot) stages on a midi_dir folder, in a fresh process
    (so its peak RSS, and its largest worker's, are this run's alone)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "offline"}
    args = [f"paths.data={work}", "corpus=midi_dir", f"corpus.path={folder}",
            f"preprocess.workers={workers}", f"preprocess.shard_size={shard_size}"]
    proc = subprocess.run([sys.executable, "-c", STAGE_RUN, *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"stage run failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["bytes_md5"] = folder_md5(work / "interim") + folder_md5(work / "processed")
    return result


def stage_wall(run: dict) -> float:
    return run["extract_s"] + run["tokenize_s"]


def folder_md5(folder: Path) -> str:
    h = hashlib.md5()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()[:12]


def midi_main(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench_preprocess_"))
    try:
        big = synthetic_midi_folder(args.data, args.corpora, args.files * 10, work / "midi_big")
        small = work / "midi_small"
        small.mkdir()
        for f in big[:args.files]:
            shutil.copy(f, small / f.name)
        same = big[:args.limit_midi]
        print(f"{len(same)} MIDI files from {', '.join(args.corpora)} (transposed copies), "
              f"{args.repeat} repeats, one process", flush=True)
        throughput = midi_throughput(same, args.repeat)
        for side, s in throughput.items():
            ratio = s.get("ratio_tunelab_over_this")
            print(f"  {side:<8} {s['files_per_s']:7.1f} files/s  {s['notes']:>7} notes"
                  + (f"  tunelab/{side} = {ratio:.2f}" if ratio else ""), flush=True)
        runs: dict[str, dict] = {}
        n = args.workers
        print(f"extract + tokenize (melody_onehot) stages, midi_dir, shard_size {args.shard_size}, "
              "each run a fresh process", flush=True)
        for size, folder in (("small", small), ("big", work / "midi_big")):
            for workers in (1, n):  # the same data folder: a score's source is its absolute path
                name = f"{size}_w{workers}"
                runs[name] = r = stage_run(folder, work / f"data_{size}", workers, args.shard_size)
                print(f"  {name:<9} {r['pieces']:>5} pieces {r['notes']:>7} notes  extract "
                      f"{r['extract_s']:6.1f} s  tokenize {r['tokenize_s']:5.1f} s  peak RSS: main "
                      f"{r['main_peak_mib']:4.0f} MiB, largest worker {r['worker_peak_mib']:4.0f} MiB, "
                      f"all workers {r['workers_peak_mib']:4.0f} MiB  output {r['bytes_md5']}", flush=True)
        summary = {f"speedup_{size}": stage_wall(runs[f"{size}_w1"]) / stage_wall(runs[f"{size}_w{n}"])
                   for size in ("small", "big")}
        summary["same_bytes"] = all(runs[f"{s}_w1"]["bytes_md5"] == runs[f"{s}_w{n}"]["bytes_md5"]
                                    for s in ("small", "big"))
        print(f"  {n} workers vs 1: {summary['speedup_small']:.2f}x ({args.files} files), "
              f"{summary['speedup_big']:.2f}x ({10 * args.files} files); same bytes: {summary['same_bytes']}")
        return {"files": len(same), "throughput": throughput, "stage_runs": runs, **summary,
                "machine": machine_info(), "loadavg_end": os.getloadavg()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
