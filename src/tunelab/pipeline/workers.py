"""What a worker process runs for one shard of the extract and tokenize stages.

Every engine (tunelab.pipeline.parallel) runs these same functions. This module imports only
the data layer (no configuration, no torch), so a worker process starts in well under a
second; the stages in extract.py and tokenize.py cut the shards and write the results.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from tunelab.corpora import corpus_module, split_of
from tunelab.encodings.registry import (
    MELODY_ENCODINGS,
    VAE_ENCODINGS,
    accompaniment_voices,
    encoding_for,
    musenet_style,
    prepare_melody,
    trio_voices,
)
from tunelab.music.constants import SATB
from tunelab.music.melody import Melody, extract_melodies, melody_from_record
from tunelab.music.score import Score
from tunelab.shards import jsonl_gz_member, parse_jsonl

# --- extract ------------------------------------------------------------------------------

def piece_split(score: Score, valid: float, test: float) -> str:
    return score.meta.get("split") or split_of(score.id, valid, test)


@dataclass(frozen=True)
class ExtractJob:
    """What a worker needs to extract one shard (plain, picklable values)."""

    kind: str
    raw: Path
    corpus: Any  # corpus_settings(cfg)
    melody_args: tuple  # extract_melodies' positional settings after the score
    tracks: list[str] | None
    valid: float
    test: float


@dataclass
class ExtractShard:
    """One shard's output: its pieces and melodies as gzip members, and its counts."""

    scores: bytes = b""
    melodies: bytes = b""
    pieces: int = 0
    notes: int = 0
    melody_count: int = 0
    melody_steps: int = 0
    by_split: Counter = field(default_factory=Counter)
    extraction: Counter = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)


def extract_shard(task: tuple[ExtractJob, list]) -> ExtractShard:
    """Read one shard's units, extract their melodies, compress both; every engine runs this."""
    job, units = task
    read_unit = corpus_module(job.kind).read_unit
    out = ExtractShard()
    scores, melodies = [], []
    for unit in units:
        for parsed in read_unit(job.raw, job.corpus, unit):
            if parsed.score is None:
                out.skipped[parsed.source] = parsed.skipped
                continue
            split = piece_split(parsed.score, job.valid, job.test)
            score = replace(parsed.score, meta={**parsed.score.meta, "split": split})
            found, stats = extract_melodies(score, *job.melody_args, tracks=job.tracks)
            scores.append(score.to_dict())
            melodies += [{**m.__dict__, "events": list(m.events), "split": split} for m in found]
            out.pieces += 1
            out.notes += score.num_notes
            out.by_split[split] += 1
            out.extraction.update(stats)
            out.melody_steps += sum(len(m) for m in found)
    out.melody_count = len(melodies)
    out.scores, out.melodies = jsonl_gz_member(scores), jsonl_gz_member(melodies)
    return out


# --- tokenize -----------------------------------------------------------------------------

def _items(cfg: DictConfig, name: str, records: list[dict]) -> list[tuple[str, str, Any, Any]]:
    """(id, split, x, expected decode) for every piece of ``records`` (lines of the interim
    melodies or scores file) the encoding applies to."""
    from tunelab import encodings as enc

    if name in MELODY_ENCODINGS:
        items = []
        for m, split in map(melody_from_record, records):
            m = prepare_melody(m, name, cfg.squash.transpose_to_key)
            items.append((f"{m.piece_id}/{m.track}@{m.start_step}", split, m, m.events))
        return items
    scores = [Score.from_dict(d) for d in records]
    if name in VAE_ENCODINGS:
        return _vae_items(cfg, name, scores)
    if name == "performance":
        return [(s.id, s.meta["split"], s, enc.to_performance_grid(s)) for s in scores]
    if name == "musenet":
        style = musenet_style(cfg)
        return [(s.id, s.meta["split"], (s, style), enc.to_musenet_grid(s)) for s in scores]
    voices = accompaniment_voices(cfg) if name == "voice_events" else SATB
    to_grid = enc.score_to_voice_events if name == "voice_events" else enc.score_to_grid
    items = []
    for s in scores:  # scores with every voice only
        if {t.name for t in s.tracks} >= set(voices):
            grid = to_grid(s, voices)
            items.append((s.id, s.meta["split"], grid, grid))
    return items


def _vae_items(cfg: DictConfig, name: str, scores: list) -> list[tuple[str, str, Any, Any]]:
    """Each piece's distinct MusicVAE windows as one item (pieces without any are left out)."""
    from tunelab.encodings import music_vae

    bars, parts = VAE_ENCODINGS[name]
    if parts > 1:
        windows_of = partial(music_vae.trio_windows, voices=trio_voices(cfg), bars=bars)
    else:
        tracks = list(cfg.corpus.melody_tracks) if cfg.corpus.melody_tracks else None
        windows_of = partial(music_vae.melody_windows, bars=bars, tracks=tracks)
    items = []
    for s in scores:
        windows = windows_of(s)
        if len(windows):
            items.append((s.id, s.meta["split"], windows, windows))
    return items


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if hasattr(a, "tracks") and hasattr(b, "tracks"):
        return [t.notes for t in a.tracks] == [t.notes for t in b.tracks]
    return tuple(a) == tuple(b)


@dataclass
class TokenShard:
    """One shard's sequences per split, its round-trip failures and repair counts."""

    records: int = 0  # interim lines read
    ids: dict[str, list[str]] = field(default_factory=dict)
    seqs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    shifts: dict[str, list[int]] = field(default_factory=dict)  # squash transposition per melody
    failures: dict[str, str] = field(default_factory=dict)
    fifo_repaired_notes: int = 0
    unison_cuts: int = 0


def tokenize_shard(task: tuple[DictConfig, str, bytes]) -> TokenShard:
    """Encode one shard of interim lines and check each round trip; every engine runs this."""
    cfg, name, chunk = task
    encoding = encoding_for(cfg, name)
    records = parse_jsonl(chunk)
    items = _items(cfg, name, records)
    out = TokenShard(records=len(records))
    for piece_id, split, x, expected in items:
        try:
            labels = np.asarray(encoding.encode(*x) if name == "musenet" else encoding.encode(x))
        except ValueError as e:
            out.failures[piece_id] = f"encode: {e}"
            continue
        if not _same(encoding.decode(labels), expected):
            out.failures[piece_id] = "decode(encode(x)) != x"
        out.ids.setdefault(split, []).append(piece_id)
        out.seqs.setdefault(split, []).append(labels)
        out.shifts.setdefault(split, []).append(x.transpose if isinstance(x, Melody) else 0)
    if name == "performance":
        # Unison notes nested in one another come back re-paired (note-seq's FIFO note-offs);
        # the round trip is checked against that canonical form, so count what it changed.
        from tunelab.encodings import count_fifo_repairs

        out.fifo_repaired_notes = int(sum(count_fifo_repairs(x) for _, _, x, _ in items))
    if name == "musenet":
        # Same-instrument unisons (Bach's voices are all piano) are collapsed or cut in the
        # canonical form the round trip is checked against; count the notes it changed.
        from tunelab.encodings import count_unison_cuts

        out.unison_cuts = int(sum(count_unison_cuts(x[0]) for _, _, x, _ in items))
    return out
