"""The download and extract stages: raw files + manifest, then scores, melodies, stats."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.config import corpus_settings
from tunelab.corpora import corpus_module, split_of
from tunelab.corpora.download import file_digests
from tunelab.corpora.midi_dir import midi_files
from tunelab.music.melody import Melody, extract_melodies
from tunelab.music.score import Score, save_scores, write_jsonl_gz
from tunelab.paths import interim_dir, raw_dir

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def download(cfg: DictConfig) -> Path:
    """Fetch a corpus into data/raw/{corpus}/ with a manifest; replaces it only on success."""
    settings = corpus_settings(cfg)
    final = raw_dir(cfg)
    with atomic_dir(final) as tmp:
        info = corpus_module(cfg.corpus.kind).fetch(tmp, settings)
        digests = file_digests(tmp)
        write_json_atomic(tmp / MANIFEST, {
            "corpus": cfg.corpus.name,
            **info,
            "file_count": len(digests),
            "sha256": digests,
        })
    log.info("%s: %d files in %s", cfg.corpus.name, len(digests), final)
    return final


def stale_user_copy(cfg: DictConfig, raw: Path) -> str | None:
    """Why the raw copy of a ``midi_dir`` corpus no longer matches ``corpus.path`` (another
    folder, or files added, removed or changed: their sha256s differ), else None."""
    if not (raw / MANIFEST).is_file():
        return "no copy yet"
    manifest = json.loads((raw / MANIFEST).read_text())
    root = Path(str(cfg.corpus.path)).expanduser()
    if manifest.get("source") != str(root.resolve()):
        return f"corpus.path changed from {manifest.get('source')}"
    if file_digests(root, midi_files(root)) != {k: v for k, v in manifest["sha256"].items() if k != MANIFEST}:
        return f"the files in {root} changed"
    return None


def piece_split(score: Score, cfg: DictConfig) -> str:
    return score.meta.get("split") or split_of(score.id, cfg.split.valid, cfg.split.test)


def extract(cfg: DictConfig) -> dict:
    """Parse the raw corpus, extract melodies, write data/interim/{corpus}/.

    Melodies are stored as extracted, at their real pitches; each encoding squashes them
    into its own range at the tokenize stage, as Magenta's EncoderPipeline does.
    """
    src = raw_dir(cfg)
    if cfg.corpus.kind == "midi_dir" and (why := stale_user_copy(cfg, src)):
        log.info("%s: copying %s into %s first (%s)", cfg.corpus.name, cfg.corpus.path, src, why)
        download(cfg)  # a user's folder needs no separate download step
    if not (src / MANIFEST).is_file():
        raise FileNotFoundError(
            f"{src / MANIFEST} is missing: run `tunelab download corpus={cfg.corpus.name}` first")
    settings = corpus_settings(cfg)
    ex = cfg.extract
    ignore_poly = (cfg.corpus.ignore_polyphonic_notes
                   if cfg.corpus.ignore_polyphonic_notes is not None else ex.ignore_polyphonic_notes)
    tracks = list(cfg.corpus.melody_tracks) if cfg.corpus.melody_tracks else None
    scores: list[Score] = []
    melodies: list[Melody] = []
    skipped: dict[str, str] = {}
    counts: Counter = Counter()
    for parsed in corpus_module(cfg.corpus.kind).read(src, settings):
        if parsed.score is None:
            skipped[parsed.source] = parsed.skipped
            continue
        score = replace(parsed.score, meta={**parsed.score.meta, "split": piece_split(parsed.score, cfg)})
        scores.append(score)
        found, stats = extract_melodies(
            score, ex.min_bars, ex.max_steps_truncate, ex.min_unique_pitches, ex.gap_bars,
            ignore_poly, tracks=tracks)
        counts.update(stats)
        melodies += found
    if not scores:
        raise ValueError(f"corpus {cfg.corpus.name}: no readable pieces in {src} "
                         f"({len(skipped)} skipped; see reasons with --verbose)")
    split_counts = Counter(s.meta["split"] for s in scores)
    stats = {
        "corpus": cfg.corpus.name,
        "pieces": len(scores),
        "pieces_by_split": dict(sorted(split_counts.items())),
        "notes": sum(s.num_notes for s in scores),
        "melodies": len(melodies),
        "melody_steps": sum(len(m) for m in melodies),
        "extraction": dict(sorted(counts.items())),
        "settings": {"ignore_polyphonic_notes": ignore_poly, "melody_tracks": tracks},
        "skipped_files": len(skipped),
        "skipped": skipped,
    }
    out = interim_dir(cfg)
    with atomic_dir(out) as tmp:
        save_scores(tmp / "scores.jsonl.gz", tqdm(scores, desc="write scores", leave=False))
        split_by_id = {s.id: s.meta["split"] for s in scores}
        write_jsonl_gz(tmp / "melodies.jsonl.gz", (
            {**m.__dict__, "events": list(m.events), "split": split_by_id[m.piece_id]} for m in melodies))
        write_json_atomic(tmp / "stats.json", stats)
    return stats
