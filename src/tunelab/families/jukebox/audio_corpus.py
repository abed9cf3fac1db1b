"""The audio corpus (Jukebox): each piece of a corpus rendered to mono FLAC, or a user's
folder of WAV/FLAC files brought to one rate, written to ``data/audio/{corpus}/``.

Layout: ``{split}/{safe_id}.flac`` (16-bit PCM, mono, ``audio.sample_rate``, at most
``audio.seconds_per_piece`` seconds), ``manifest.json`` (one entry per file) and
``stats.json`` (counts, seconds per split, skipped pieces and why). The same inputs,
fluidsynth and libFLAC give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from omegaconf import DictConfig
from scipy.signal import resample_poly
from tqdm import tqdm

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.corpora import split_of
from tunelab.music.audio import (
    AudioRenderError,
    FluidsynthNotFoundError,
    default_soundfont,
    fluidsynth_executable,
    render_wav,
)
from tunelab.music.midi_io import write_midi
from tunelab.music.score import Score, load_scores
from tunelab.paths import interim_dir

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
AUDIO_SUFFIXES = (".wav", ".flac")
MANIFEST = "manifest.json"
STATS = "stats.json"
HEAD_MARGIN_S = 0.5  # notes kept past the cut when rendering only a piece's head


def audio_dir(cfg: DictConfig, corpus: str | None = None) -> Path:
    return Path(cfg.paths.data) / "audio" / (corpus or cfg.corpus.name)


def _safe_id(piece_id: str, taken: set[str]) -> str:
    """``piece_id`` as a file stem, unique among ``taken`` (compared case-folded, for
    case-insensitive file systems); a clash gets a short hash of the id appended."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", piece_id).lstrip(".") or "piece"
    if safe.casefold() in taken:
        base = safe = f"{safe}-{hashlib.sha256(piece_id.encode()).hexdigest()[:10]}"
        k = 1
        while safe.casefold() in taken:
            safe, k = f"{base}-{k}", k + 1
    taken.add(safe.casefold())
    return safe


def _to_pcm16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16 as render_wav writes them (round, no dither)."""
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm.astype(np.float64) / 32768.0)))) if pcm.size else 0.0


def _head(score: Score, seconds: float) -> Score:
    """The notes that sound in the first ``seconds`` (plus a margin, cut there): fluidsynth
    is causal, so the kept audio is the same as the whole piece's and long pieces render fast."""
    cut = math.ceil((seconds + HEAD_MARGIN_S) / score.seconds_per_step())
    tracks = [replace(t, notes=tuple(replace(n, end=min(n.end, cut)) for n in t.notes if n.start < cut))
              for t in score.tracks]
    return score.with_tracks(tracks)


Item = tuple[str, str, "Score | Path"]  # (piece id, split, what to read it from)


def _rendered(cfg: DictConfig) -> tuple[list[Item], str, Path]:
    """(piece id, split, score) of every extracted piece, the stats' source and the folder."""
    path = interim_dir(cfg) / "scores.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `tunelab extract corpus={cfg.corpus.name}` first")
    fluidsynth_executable()  # the install hint before any work
    items = [(s.id, s.meta.get("split") or split_of(s.id, cfg.split.valid, cfg.split.test), s)
             for s in load_scores(path)]
    return items, f"rendered: fluidsynth + {default_soundfont().stem}", path.parent


def _folder(cfg: DictConfig) -> tuple[list[Item], str, Path]:
    """(relative path, split, file) of every WAV/FLAC under ``audio.source_dir``."""
    root = Path(str(cfg.audio.source_dir)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"audio.source_dir={root}: no such folder")
    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()),
                   key=lambda p: p.relative_to(root).as_posix())
    items = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        items.append((rel, split_of(rel, cfg.split.valid, cfg.split.test), p))
    return items, str(cfg.audio.source_dir), root


class SilentPieceError(ValueError):
    """Nothing sounds in the part of the piece that is kept."""


def _render_piece(score: Score, work: Path, rate: int, seconds: float) -> np.ndarray:
    """The first ``seconds`` of ``score`` as int16 mono PCM (render_wav's samples, unchanged)."""
    # Checked on the notes, not the audio: fluidsynth emits ~1e-8 of noise without any note,
    # and render_wav normalises that to -1 dBFS, so the RMS test cannot see a silent render.
    if not any(n.velocity > 0 and n.start * score.seconds_per_step() < seconds
               for t in score.tracks for n in t.notes):
        raise SilentPieceError(f"silent: no notes in the first {seconds:g} s")
    midi = write_midi(_head(score, seconds), work / "piece.mid")
    wav = render_wav(midi, work / "piece.wav", sample_rate=rate, max_seconds=seconds)
    pcm, got = sf.read(wav, dtype="int16")
    if got != rate:
        raise AudioRenderError(f"{wav}: rendered at {got} Hz, asked for {rate} Hz")
    return pcm


def read_mono(path: Path, rate: int, seconds: float | None = None) -> np.ndarray:
    """A WAV/FLAC file as float64 mono at ``rate``: downmixed, resampled, cut at ``seconds``
    (None: the whole file)."""
    info = sf.info(str(path))
    ratio = Fraction(rate, info.samplerate)  # exact rational up/down
    up, down = ratio.numerator, ratio.denominator
    keep = None if seconds is None else int(round(seconds * rate))
    # read only what the cut keeps, plus the resampling filter's reach (10 * max(up, down) taps)
    need = -1 if keep is None else math.ceil(keep * down / up) + (10 * max(up, down)) // up + 2
    x, _ = sf.read(str(path), frames=need, dtype="float64", always_2d=True)
    mono = x.mean(axis=1)
    if up != down and mono.size:
        mono = resample_poly(mono, up, down)
    return mono[:keep]


def _read_file(path: Path, rate: int, seconds: float) -> np.ndarray:
    """A WAV/FLAC file as int16 mono PCM at ``rate``: downmixed, resampled, cut."""
    return _to_pcm16(read_mono(path, rate, seconds))


def render_corpus_audio(cfg: DictConfig) -> dict:
    """Write ``data/audio/{corpus}/`` whole: the corpus rendered with fluidsynth, or the
    files of ``audio.source_dir``. Unreadable, empty or silent pieces are skipped and listed
    in stats.json; none usable at all is a ValueError naming the folder."""
    a = cfg.audio
    rate, seconds = int(a.sample_rate), float(a.seconds_per_piece)
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"audio.sample_rate={a.sample_rate} and audio.seconds_per_piece="
                         f"{a.seconds_per_piece} must be > 0")
    from_folder = a.source_dir is not None
    items, source, folder = _folder(cfg) if from_folder else _rendered(cfg)
    if a.get("max_pieces"):  # the first N of each split, in source order (quick runs and tests)
        per_split: Counter = Counter()
        kept = []
        for item in items:
            per_split[item[1]] += 1
            if per_split[item[1]] <= a.max_pieces:
                kept.append(item)
        items = kept
    taken: set[str] = set()
    manifest: list[dict] = []
    skipped: dict[str, str] = {}
    out = audio_dir(cfg)
    with atomic_dir(out) as tmp, tempfile.TemporaryDirectory(prefix="tunelab-audio-") as work:
        for piece_id, split, src in tqdm(items, desc=f"audio {cfg.corpus.name}", unit="piece", leave=False):
            try:
                if from_folder:
                    pcm = _read_file(src, rate, seconds)
                else:
                    pcm = _render_piece(src, Path(work), rate, seconds)
            except FluidsynthNotFoundError:
                raise  # not the piece's fault: the install hint, once
            except (AudioRenderError, sf.LibsndfileError, OSError, ValueError, RuntimeError, EOFError) as e:
                # corrupt or unreadable: CorruptMidiError and BadNoteError are ValueErrors
                skipped[piece_id] = (str(e).strip().splitlines() or [type(e).__name__])[0]
                continue
            if pcm.size == 0:
                skipped[piece_id] = "empty: no samples"
                continue
            if (rms := _rms(pcm)) < a.silence_rms:
                skipped[piece_id] = f"silent: RMS {rms:.3g} < audio.silence_rms={a.silence_rms:g}"
                continue
            stem = Path(piece_id).with_suffix("").as_posix() if from_folder else piece_id
            file = f"{split}/{_safe_id(stem, taken)}.flac"
            (tmp / split).mkdir(exist_ok=True)
            sf.write(tmp / file, pcm, rate, format="FLAC", subtype="PCM_16")
            manifest.append({"file": file, "piece_id": piece_id, "split": split,
                             "seconds": round(pcm.size / rate, 6), "sample_rate": rate})
        if not manifest:
            why = (f"all {len(skipped)} skipped, e.g. {next(iter(skipped))}: {next(iter(skipped.values()))}"
                   if skipped else "no .wav/.flac files" if from_folder else "no pieces")
            raise ValueError(f"no usable audio in {folder}: {why}")
        manifest.sort(key=lambda m: m["file"])
        stats = {
            "corpus": cfg.corpus.name,
            "sample_rate": rate,
            "seconds_per_piece": seconds,
            "pieces": len(manifest),
            "pieces_by_split": {s: sum(m["split"] == s for m in manifest) for s in SPLITS},
            "seconds_by_split": {s: round(sum(m["seconds"] for m in manifest if m["split"] == s), 3)
                                 for s in SPLITS},
            "skipped": dict(sorted(skipped.items())),
            "source": source,
        }
        write_json_atomic(tmp / MANIFEST, manifest)
        write_json_atomic(tmp / STATS, stats)
    if skipped:
        log.info("%s: %d of %d pieces skipped (reasons in %s)", cfg.corpus.name, len(skipped),
                 len(items), out / STATS)
    return stats


def _read_json(folder: Path, name: str) -> dict | list:
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `tunelab render_audio corpus={Path(folder).name}` first")
    return json.loads(path.read_text())


def audio_rate(folder: Path) -> int:
    """The sample rate of an audio corpus folder (from its stats.json)."""
    return int(_read_json(folder, STATS)["sample_rate"])


def load_audio_split(folder: Path, split: str) -> list[tuple[str, np.ndarray]]:
    """(piece id, float32 mono samples in [-1, 1)) of one split, sorted by piece id."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: one of {', '.join(SPLITS)}")
    rate = audio_rate(folder)
    out = []
    for m in _read_json(folder, MANIFEST):
        if m["split"] != split:
            continue
        x, got = sf.read(Path(folder) / m["file"], dtype="float32")
        if got != rate:
            raise ValueError(f"{Path(folder) / m['file']}: {got} Hz, stats.json says {rate} Hz")
        out.append((m["piece_id"], x))
    return sorted(out, key=lambda p: p[0])


def _arrays(pieces: Sequence[np.ndarray] | Sequence[tuple[str, np.ndarray]]) -> list[np.ndarray]:
    """Bare sample arrays, whether given as arrays or as load_audio_split's (id, samples) pairs."""
    return [np.asarray(p[1] if isinstance(p, tuple) else p, dtype=np.float32) for p in pieces]


def random_windows(pieces: Sequence[np.ndarray] | Sequence[tuple[str, np.ndarray]], length: int, count: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``count`` windows of ``length`` samples, (count, length) float32, uniform over all
    window positions of the corpus (a piece is drawn in proportion to its start positions);
    a piece shorter than ``length`` gives one window, zero-padded at the end."""
    xs = _arrays(pieces)
    if not xs or length <= 0 or count < 0:
        raise ValueError(f"random_windows: need pieces (got {len(xs)}), length > 0 (got {length}), "
                         f"count >= 0 (got {count})")
    starts = np.array([max(x.size - length + 1, 1) for x in xs], dtype=np.int64)
    which = rng.choice(len(xs), size=count, p=starts / starts.sum())
    offsets = np.floor(rng.random(count) * starts[which]).astype(np.int64)
    out = np.zeros((count, length), dtype=np.float32)
    for row, (i, o) in enumerate(zip(which, offsets, strict=True)):
        w = xs[i][o:o + length]
        out[row, :w.size] = w
    return out


def consecutive_windows(pieces: Sequence[np.ndarray] | Sequence[tuple[str, np.ndarray]],
                        length: int) -> np.ndarray:
    """Every whole non-overlapping window of ``length`` samples of every piece, in order,
    (n, length) float32; a piece's remainder (and a piece shorter than ``length``) is dropped."""
    if length <= 0:
        raise ValueError(f"consecutive_windows: length must be > 0, got {length}")
    rows: Iterator[np.ndarray] = (x[: x.size // length * length].reshape(-1, length) for x in _arrays(pieces))
    return np.concatenate([np.zeros((0, length), np.float32), *rows]).astype(np.float32, copy=False)
