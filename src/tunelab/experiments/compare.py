"""`tunelab compare`: chosen runs side by side, config values and metrics, as Markdown
(printed, and written with a CSV twin to reports/compare.{md,csv}).

Local runs are the train stage's ``models/{run}/config.yaml`` with the evaluate stage's
``reports/metrics/{run}.json``; ``--wandb entity/project`` reads online runs through the
W&B API instead (after ``wandb login``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tunelab.atomic import write_text_atomic
from tunelab.tracking import flatten

# Shown by default when present: the numbers a reader compares runs by.
HEADLINE = ("test/nll_per_step", "test/bits_per_step", "test/bits_per_note", "beats_baseline",
            "test/accuracy_teacher_forced", "test/elbo_per_window", "relative/mean_oa",
            "novelty/copied_share", "samples/pitch_range", "samples/scale_consistency",
            "test_pieces/scale_consistency")
IGNORED_CONFIG = ("paths.", "logger.", "pipeline.", "hydra.")


def _flat_config(conf: dict) -> dict[str, object]:
    out: dict[str, object] = {}

    def walk(d: object, prefix: str) -> None:
        if isinstance(d, dict):
            for k, v in d.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = json.dumps(d) if isinstance(d, list) else d

    walk(conf, "")
    return out


def local_runs(cfg: DictConfig) -> dict[str, tuple[dict, dict]]:
    """run -> (flat config, flat metrics) of every run with a config or a metrics file."""
    models, metrics = Path(cfg.paths.models), Path(cfg.paths.reports) / "metrics"
    names = {p.parent.name for p in models.glob("*/config.yaml")} | {p.stem for p in metrics.glob("*.json")}
    runs = {}
    for name in sorted(names):
        conf = models / name / "config.yaml"
        m = metrics / f"{name}.json"
        runs[name] = (_flat_config(OmegaConf.to_container(OmegaConf.load(conf))) if conf.is_file() else {},
                      flatten(json.loads(m.read_text())) if m.is_file() else {})
    return runs


def wandb_runs(path: str) -> dict[str, tuple[dict, dict]]:
    """run name -> (flat config, flat summary) of the online runs of ``entity/project``."""
    import wandb

    if not wandb.Api().api_key:
        raise RuntimeError("no W&B credentials: run `wandb login` (or compare local runs without --wandb)")
    runs = {}
    for r in wandb.Api().runs(path):
        key = f"{r.name}:{r.job_type}" if r.job_type else r.name
        runs[key] = (_flat_config(dict(r.config)), flatten(dict(r.summary)))
    return runs


def _fmt(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def comparison_rows(runs: dict[str, tuple[dict, dict]], keys: list[str] | None) -> list[list[str]]:
    """Header + one row per key: config keys that differ between the runs (or ``keys``), then
    the headline metrics (or the metrics among ``keys``) any run has."""
    names = list(runs)
    configs = [runs[n][0] for n in names]
    metrics = [runs[n][1] for n in names]
    if keys:
        conf_keys = [k for k in keys if any(k in c for c in configs)]
        metric_keys = [k for k in keys if any(k in m for m in metrics)]
        unknown = set(keys) - set(conf_keys) - set(metric_keys)
        if unknown:
            raise KeyError(f"--keys {' '.join(sorted(unknown))}: no chosen run has them "
                           "(config keys are dotted, e.g. model.net.hidden_size; metrics use /, "
                           "e.g. test/nll_per_step)")
    else:
        all_conf = sorted({k for c in configs for k in c if not k.startswith(IGNORED_CONFIG)})
        conf_keys = [k for k in all_conf if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
        metric_keys = [k for k in HEADLINE if any(k in m for m in metrics)]
    rows = [["key", *names]]
    rows += [[k, *(_fmt(c.get(k)) for c in configs)] for k in conf_keys]
    rows += [[k, *(_fmt(m.get(k)) for m in metrics)] for k in metric_keys]
    return rows


def to_markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def compare(cfg: DictConfig, names: list[str] | None, wandb_path: str | None,
            keys: list[str] | None) -> list[list[str]]:
    runs = wandb_runs(wandb_path) if wandb_path else local_runs(cfg)
    if names:
        missing = [n for n in names if n not in runs]
        if missing:
            raise KeyError(f"no run named {', '.join(missing)}; runs: {', '.join(runs) or '(none)'}")
        runs = {n: runs[n] for n in names}
    if not runs:
        raise FileNotFoundError(f"no runs under {cfg.paths.models} or {cfg.paths.reports}/metrics: "
                                "train and evaluate first (dvc repro)")
    rows = comparison_rows(runs, keys)
    md = to_markdown(rows)
    print(md, end="")
    out = Path(cfg.paths.reports)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    write_text_atomic(out / "compare.md", md)
    write_text_atomic(out / "compare.csv", buf.getvalue())
    return rows
