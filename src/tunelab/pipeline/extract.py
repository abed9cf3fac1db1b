"""The download and extract stages: raw files + manifest, then scores, melodies, stats
(their format: tunelab.shards)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.config import corpus_settings
from tunelab.corpora import corpus_module
from tunelab.corpora.download import file_digests
from tunelab.corpora.midi_dir import midi_files
from tunelab.paths import interim_dir, raw_dir
from tunelab.pipeline.parallel import engine_of, map_ordered, shards
from tunelab.pipeline.workers import ExtractJob, ExtractShard, extract_shard

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


def extract(cfg: DictConfig) -> dict:
    """Parse the raw corpus, extract melodies, write data/interim/{corpus}/.

    Melodies are stored as extracted, at their real pitches; each encoding squashes them
    into its own range at the tokenize stage, as Magenta's EncoderPipeline does. The corpus
    is read in shards by ``preprocess.workers`` processes (tunelab.pipeline.parallel) and
    written in shard order, so the bytes do not depend on how many ran.
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
    job = ExtractJob(cfg.corpus.kind, src, settings,
                     (ex.min_bars, ex.max_steps_truncate, ex.min_unique_pitches, ex.gap_bars, ignore_poly),
                     tracks, cfg.split.valid, cfg.split.test)
    engine = engine_of(cfg)
    units = corpus_module(cfg.corpus.kind).units(src, settings)
    tasks = [(job, chunk) for chunk in shards(units, engine.shard_size)]
    total = ExtractShard()
    out = interim_dir(cfg)
    with atomic_dir(out) as tmp, open(tmp / "scores.jsonl.gz", "wb") as scores, \
            open(tmp / "melodies.jsonl.gz", "wb") as melodies, \
            tqdm(total=len(units), desc=f"extract {cfg.corpus.name}", unit="file") as bar:
        results = map_ordered(extract_shard, tasks, engine, len(tasks))
        for (_, chunk), shard in zip(tasks, results, strict=True):
            scores.write(shard.scores)
            melodies.write(shard.melodies)
            _add(total, shard)
            bar.update(len(chunk))
        if not total.pieces:
            raise ValueError(f"corpus {cfg.corpus.name}: no readable pieces in {src} "
                             f"({len(total.skipped)} skipped; see reasons with --verbose)")
        stats = {
            "corpus": cfg.corpus.name,
            "pieces": total.pieces,
            "pieces_by_split": dict(sorted(total.by_split.items())),
            "notes": total.notes,
            "melodies": total.melody_count,
            "melody_steps": total.melody_steps,
            "extraction": dict(sorted(total.extraction.items())),
            "settings": {"ignore_polyphonic_notes": ignore_poly, "melody_tracks": tracks},
            "skipped_files": len(total.skipped),
            "skipped": total.skipped,
        }
        write_json_atomic(tmp / "stats.json", stats)
    return stats


def _add(total: ExtractShard, shard: ExtractShard) -> None:
    """Fold a shard's counts into the running total (its bytes are already written)."""
    total.pieces += shard.pieces
    total.notes += shard.notes
    total.melody_count += shard.melody_count
    total.melody_steps += shard.melody_steps
    total.by_split.update(shard.by_split)
    total.extraction.update(shard.extraction)
    total.skipped.update(shard.skipped)
