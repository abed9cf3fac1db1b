"""Weights & Biases: which group a run joins, the evaluation run (metrics, sample audio and
piano rolls), and a reader for offline runs, so their contents can be checked without a
W&B account.

Runs are offline by default (``logger.mode``; ``WANDB_MODE`` in the environment wins) and
sync later with ``wandb sync logs/wandb/offline-run-*``; ``logger=csv`` turns W&B off.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tunelab.paths import run_name, samples_dir

log = logging.getLogger(__name__)


def wandb_name(cfg: DictConfig) -> str:
    """``logger.name`` if set (a sweep's job), else ``{model}-{corpus}``."""
    return cfg.logger.get("name") or run_name(cfg)


def wandb_group(cfg: DictConfig) -> str:
    """``logger.group`` if set (one name for a whole sweep), else the corpus."""
    return cfg.logger.get("group") or cfg.corpus.name


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Nested metrics as ``a/b/c`` keys; only finite numbers (and bools as 0/1) are kept."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        elif isinstance(v, bool | int | float) and math.isfinite(float(v)):
            out[key] = float(v)
    return out


def start_run(cfg: DictConfig, job_type: str) -> Any:
    """A W&B run for ``cfg`` under ``paths.logs``, with the resolved config."""
    import wandb

    os.environ.setdefault("WANDB_MODE", cfg.logger.mode)
    save = Path(cfg.paths.logs)
    save.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=cfg.logger.project, name=wandb_name(cfg), group=wandb_group(cfg),
                      job_type=job_type, dir=str(save), config=OmegaConf.to_container(cfg, resolve=True),
                      reinit="finish_previous")


def log_evaluation(cfg: DictConfig, metrics: dict) -> None:
    """One ``evaluate`` run: every metric in the summary, and the first
    ``report.samples_per_run`` samples as piano rolls and rendered audio."""
    if cfg.logger.kind != "wandb":
        return
    import wandb

    from tunelab.music.midi_io import read_midi
    from tunelab.plotting import write_piano_roll

    run = start_run(cfg, "evaluate")
    try:
        run.summary.update(flatten(metrics))
        files = sorted(samples_dir(cfg).glob("*.mid"))[: cfg.report.samples_per_run]
        images, audio = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for f in files:
                score = read_midi(f, cfg.corpus.steps_per_quarter)
                bar = 4 * score.steps_per_quarter
                png = write_piano_roll(score, Path(tmp) / f"{f.stem}.png", bar, f.name)
                images.append(wandb.Image(str(png), caption=f.name))
                wav = _render(cfg, f, Path(tmp) / f"{f.stem}.wav")
                if wav is not None:
                    audio.append(wandb.Audio(str(wav), caption=f.name))
            run.log({"samples/piano_roll": images, **({"samples/audio": audio} if audio else {})})
    finally:
        run.finish()


def _render(cfg: DictConfig, midi: Path, out: Path) -> Path | None:
    """Audio for W&B when a renderer is installed; a warning, not a failure, without one."""
    from tunelab.music.audio import render_wav

    try:
        return render_wav(midi, out, cfg.report.sample_rate, cfg.report.max_seconds)
    except (OSError, RuntimeError, ValueError) as e:
        log.warning("no audio for %s in W&B: %s", midi.name, str(e).splitlines()[0] if str(e) else e)
        return None


# --- reading offline runs ----------------------------------------------------------------------
# A run-*.wandb file is a LevelDB-style log of protobuf `Record`s (W&B's datastore format):
# a 7-byte header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each with
# a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
_BLOCK, _HEADER = 32768, 7


def _records(path: Path):
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _HEADER:  # a block's tail too short for a header is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        chunk = data[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield pending
            pending = b""


def read_offline_run(run_dir: Path) -> dict[str, Any]:
    """Name, group, job type, config, summary and logged history keys of an offline run
    folder (``logs/wandb/offline-run-*``)."""
    import json

    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file; is this an offline W&B run folder?")
    out: dict[str, Any] = {"config": {}, "summary": {}, "history_keys": set()}
    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.update(name=rec.run.display_name, group=rec.run.run_group, job_type=rec.run.job_type)
            out["config"].update({u.key: json.loads(u.value_json) for u in rec.run.config.update})
        elif kind == "config":
            out["config"].update({u.key: json.loads(u.value_json) for u in rec.config.update})
        elif kind == "summary":
            for u in rec.summary.update:
                out["summary"][u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
        elif kind == "history":
            # media (images, audio) arrive as nested items: [logged key, field]
            out["history_keys"].update(i.key or i.nested_key[0] for i in rec.history.item)
    return out
