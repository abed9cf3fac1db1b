"""The tokenize stage: melodies or scores -> per-split token arrays, vocab, round-trip check.

Output in data/processed/{corpus}/{encoding}/ (format: tunelab.shards): per split the
memory-mappable ``{split}.tokens.npy`` (every sequence's int16 labels concatenated),
``{split}.offsets.npy`` (n+1), ``{split}.ids.jsonl`` and ``{split}.transpose.npy``, plus
``tokens.json``, ``vocab.json`` and ``stats.json`` with the number of pieces whose
decode(encode(x)) != x (0 expected). The interim file is read in shards of
``preprocess.shard_size`` pieces, encoded by ``preprocess.workers`` processes and written in
shard order, so the bytes do not depend on how many ran.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.encodings.registry import MELODY_ENCODINGS, encoding_for
from tunelab.paths import interim_dir, processed_dir
from tunelab.pipeline.parallel import engine_of, map_ordered
from tunelab.pipeline.workers import tokenize_shard
from tunelab.shards import SPLITS, TokenWriter, jsonl_chunks

log = logging.getLogger(__name__)


def tokenize(cfg: DictConfig, name: str) -> dict:
    """Encode one corpus with one encoding; count round-trip failures."""
    src = interim_dir(cfg)
    if not (src / "stats.json").is_file():
        raise FileNotFoundError(f"{src}/stats.json is missing: run `tunelab extract "
                                f"corpus={cfg.corpus.name}` first")
    encoding = encoding_for(cfg, name)
    engine = engine_of(cfg)
    melodies = name in MELODY_ENCODINGS
    records = json.loads((src / "stats.json").read_text()).get("melodies" if melodies else "pieces")
    tasks = ((cfg, name, chunk) for chunk in
             jsonl_chunks(src / ("melodies.jsonl.gz" if melodies else "scores.jsonl.gz"), engine.shard_size))
    num_tasks = math.ceil(records / engine.shard_size) if records is not None else None
    dtype = np.int16 if len(encoding.vocab) < 2**15 else np.int32
    counts = {s: [0, 0] for s in SPLITS}  # sequences, tokens
    failures: dict[str, str] = {}
    repairs = {"fifo_repaired_notes": 0, "unison_cuts": 0}
    out = processed_dir(cfg, name)
    with atomic_dir(out) as tmp, tqdm(total=records, desc=f"tokenize {name}", unit="piece") as bar:
        writer = TokenWriter(tmp, dtype)
        for shard in map_ordered(tokenize_shard, tasks, engine, num_tasks):
            for split, seqs in shard.seqs.items():
                writer.append(split, shard.ids[split], seqs, shard.shifts[split])
                counts[split][0] += len(seqs)
                counts[split][1] += sum(len(x) for x in seqs)
            failures.update(shard.failures)
            repairs["fifo_repaired_notes"] += shard.fifo_repaired_notes
            repairs["unison_cuts"] += shard.unison_cuts
            bar.update(shard.records)
        writer.close()
        total = sum(n for n, _ in counts.values())
        if not total and not failures:
            raise ValueError(f"corpus {cfg.corpus.name} has nothing the {name} encoding applies to")
        for split in SPLITS:
            if not counts[split][0]:
                log.warning("%s/%s: the %s split is empty (%d pieces in all), so evaluate will refuse to "
                            "score it; add pieces or change split.valid/split.test", cfg.corpus.name, name,
                            split, total)
        encoding.vocab.to_json(tmp / "vocab.json")
        stats = {
            "corpus": cfg.corpus.name, "encoding": name, "vocab_size": len(encoding.vocab),
            "input_size": int(encoding.input_size),
            "sequences": {s: counts[s][0] for s in SPLITS},
            "tokens": {s: counts[s][1] for s in SPLITS},
            "roundtrip_failures": len(failures), "failures": failures,
        }
        if name == "performance":
            stats["fifo_repaired_notes"] = repairs["fifo_repaired_notes"]
        if name == "musenet":
            stats["unison_cuts"] = repairs["unison_cuts"]
        write_json_atomic(tmp / "stats.json", stats)
    return stats
