"""The tokenize stage: melodies or scores -> per-split token arrays, vocab, round-trip check.

Output in data/processed/{corpus}/{encoding}/: ``{train,valid,test}.npz`` (``tokens``
concatenated int16 labels, ``offsets`` (n+1,), ``ids``), ``vocab.json`` and
``stats.json`` with the number of pieces whose decode(encode(x)) != x (0 expected).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import partial
from typing import Any

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir, write_json_atomic
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
from tunelab.music.melody import Melody
from tunelab.paths import interim_dir, processed_dir

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


def _items(cfg: DictConfig, name: str) -> list[tuple[str, str, Any, Any]]:
    """(id, split, x, expected decode) for every piece the encoding applies to."""
    from tunelab import encodings as enc
    from tunelab.music.melody import load_melodies
    from tunelab.music.score import load_scores

    src = interim_dir(cfg)
    if not (src / "stats.json").is_file():
        raise FileNotFoundError(f"{src}/stats.json is missing: run `tunelab extract "
                                f"corpus={cfg.corpus.name}` first")
    if name in MELODY_ENCODINGS:
        items = []
        for m, split in load_melodies(src / "melodies.jsonl.gz"):
            m = prepare_melody(m, name, cfg.squash.transpose_to_key)
            items.append((f"{m.piece_id}/{m.track}@{m.start_step}", split, m, m.events))
        return items
    scores = load_scores(src / "scores.jsonl.gz")
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
    for s in tqdm(scores, desc=f"{name} windows", unit="piece", leave=False):
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


def tokenize(cfg: DictConfig, name: str) -> dict:
    """Encode one corpus with one encoding; count round-trip failures."""
    encoding = encoding_for(cfg, name)
    items = _items(cfg, name)
    if not items:
        raise ValueError(f"corpus {cfg.corpus.name} has nothing the {name} encoding applies to")
    by_split: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    shifts: dict[str, list[int]] = defaultdict(list)  # squash transposition per melody
    failures: dict[str, str] = {}
    for piece_id, split, x, expected in tqdm(items, desc=f"tokenize {name}", unit="piece"):
        try:
            labels = np.asarray(encoding.encode(*x) if name == "musenet" else encoding.encode(x))
        except ValueError as e:
            failures[piece_id] = f"encode: {e}"
            continue
        if not _same(encoding.decode(labels), expected):
            failures[piece_id] = "decode(encode(x)) != x"
        by_split[split].append((piece_id, labels))
        shifts[split].append(x.transpose if isinstance(x, Melody) else 0)
    for split in SPLITS:
        if not by_split.get(split):
            log.warning("%s/%s: the %s split is empty (%d pieces in all), so evaluate will refuse to score "
                        "it; add pieces or change split.valid/split.test", cfg.corpus.name, name, split,
                        sum(len(v) for v in by_split.values()))
    dtype = np.int16 if len(encoding.vocab) < 2**15 else np.int32
    out = processed_dir(cfg, name)
    with atomic_dir(out) as tmp:
        for split in SPLITS:
            seqs = by_split.get(split, [])
            lengths = [len(s) for _, s in seqs]
            np.savez_compressed(
                tmp / f"{split}.npz",
                tokens=np.concatenate([s for _, s in seqs]).astype(dtype) if seqs else np.zeros(0, dtype),
                offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                ids=np.array([i for i, _ in seqs]),
                transpose=np.array(shifts.get(split, []), dtype=np.int16),
            )
        encoding.vocab.to_json(tmp / "vocab.json")
        stats = {
            "corpus": cfg.corpus.name, "encoding": name, "vocab_size": len(encoding.vocab),
            "input_size": int(encoding.input_size),
            "sequences": {s: len(by_split.get(s, [])) for s in SPLITS},
            "tokens": {s: int(sum(len(x) for _, x in by_split.get(s, []))) for s in SPLITS},
            "roundtrip_failures": len(failures), "failures": failures,
        }
        if name == "performance":
            # Unison notes nested in one another come back re-paired (note-seq's FIFO note-offs);
            # the round trip is checked against that canonical form, so count what it changed.
            from tunelab.encodings import count_fifo_repairs

            stats["fifo_repaired_notes"] = int(sum(count_fifo_repairs(x) for _, _, x, _ in items))
        if name == "musenet":
            # Same-instrument unisons (Bach's voices are all piano) are collapsed or cut in the
            # canonical form the round trip is checked against; count the notes it changed.
            from tunelab.encodings import count_unison_cuts

            stats["unison_cuts"] = int(sum(count_unison_cuts(x[0]) for _, _, x, _ in items))
        write_json_atomic(tmp / "stats.json", stats)
    return stats
