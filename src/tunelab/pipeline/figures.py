"""The figures stage: every picture of reports/figures/ (PNG + SVG) from the pipeline's
outputs, never from numbers typed in here.

A figure whose inputs do not exist yet (a family not trained, a stage not run) is skipped and
listed in ``skipped.json``, not faked. ``index.json`` lists the figures written, with the
title and caption the HTML report shows.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.families import FAMILIES, family
from tunelab.music.midi_io import read_midi
from tunelab.music.score import Note, Score, load_scores
from tunelab.plotting import Skip, draw_piano_roll, plt, save_figure

log = logging.getLogger(__name__)
FORMATS = (".png", ".svg")
ROLL_STEPS = 128  # 8 bars of 4/4 in the piano-roll comparison


def load_runs(reports: Path) -> dict[str, dict]:
    """``{model}-{corpus}`` -> metrics, from reports/metrics/*.json."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((reports / "metrics").glob("*.json"))}


def per_corpus(metrics: dict) -> dict[str, dict]:
    """The metrics of each corpus a run covers: one for most runs, one per style for MuseNet."""
    return metrics.get("styles") or {"": metrics}


def dig(d: Any, path: str) -> float:
    """``d["a"]["b"]`` for ``"a.b"``; NaN when absent or not a number."""
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return math.nan
        d = d[k]
    return float(d) if isinstance(d, bool | int | float) else math.nan


def split_run(run: str) -> tuple[str, str]:
    model, _, corpus = run.rpartition("-")
    return model, corpus


def _cells(runs: dict[str, dict], key: str) -> tuple[list[str], list[str], np.ndarray]:
    """Models x corpora matrix of ``key`` (MuseNet's styles are its corpora)."""
    table: dict[tuple[str, str], float] = {}
    for run, m in runs.items():
        model, corpus = split_run(run)
        for style, sub in per_corpus(m).items():
            table[(model, style or corpus)] = dig(sub, key)
    models = sorted({k[0] for k in table})
    corpora = sorted({k[1] for k in table})
    grid = np.array([[table.get((m, c), math.nan) for c in corpora] for m in models])
    return models, corpora, grid


def _heatmap(ax: plt.Axes, grid: np.ndarray, rows: list[str], cols: list[str], title: str,
             fmt: str = "{:.2f}", cmap: str = "viridis") -> None:
    masked = np.ma.masked_invalid(grid)
    im = ax.imshow(masked, cmap=cmap, aspect="auto")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title, fontsize=10)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            if math.isnan(v):
                ax.text(j, i, "—", ha="center", va="center", fontsize=7, color="0.5")
                continue
            r, g, b, _ = im.cmap(im.norm(v))  # dark text on light cells, light on dark
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w")


# --- the figures ---------------------------------------------------------------------------------
# Each takes (cfg, runs) and returns (figure, title, caption) or raises Skip.

def metrics_table(cfg: DictConfig, runs: dict[str, dict]):
    if not runs:
        raise Skip("no reports/metrics/*.json: run the evaluate stages")
    panels = [("test.bits_per_note", "test bits per note (lower is better)", "magma_r"),
              ("relative.mean_oa", "mgeval mean overlapping area (higher: closer to test)", "viridis"),
              ("novelty.copied_share", f"share of samples copying {cfg.evaluate.novelty_bars} bars", "magma")]
    # runs with none of these (Jukebox measures audio, not notes) would be a row of dashes
    runs = {r: m for r, m in runs.items()
            if any(not math.isnan(dig(sub, k)) for sub in per_corpus(m).values() for k, _, _ in panels)}
    models, corpora, _ = _cells(runs, panels[0][0])
    fig, axes = plt.subplots(1, 3, figsize=(6 + 2.2 * len(corpora) * 1.6, 1.5 + 0.4 * len(models)))
    for ax, (key, title, cmap) in zip(axes, panels, strict=True):
        rows, cols, grid = _cells(runs, key)
        _heatmap(ax, grid, rows, cols, title, cmap=cmap)
    fig.tight_layout()
    return fig, "Metrics: family × corpus", (
        "Test bits per note (the NLL of the test split over the notes it decodes to, so encodings "
        "compare), mgeval's mean overlapping area of samples against test pieces, and the share of "
        "samples that repeat a training piece. — : not measured for that model (MusicVAE has no "
        "token likelihood).")


def oa_per_feature(cfg: DictConfig, runs: dict[str, dict]):
    rows, table = [], []
    features: list[str] = []
    for run, m in runs.items():
        for style, sub in per_corpus(m).items():
            rel = sub.get("relative") or {}
            feats = {k: v for k, v in rel.items() if isinstance(v, dict) and "oa" in v}
            if not feats:
                continue
            features = features or list(feats)
            rows.append(f"{run}:{style}" if style else run)
            table.append([float(feats.get(f, {}).get("oa", math.nan)) for f in features])
    if not rows:
        raise Skip("no run has relative (mgeval) metrics yet: run the evaluate stages")
    fig, ax = plt.subplots(figsize=(3 + 0.8 * len(features), 1.5 + 0.32 * len(rows)))
    _heatmap(ax, np.array(table), rows, features, "overlapping area, samples vs test (1 = same distribution)")
    fig.tight_layout()
    return fig, "mgeval overlapping area per feature", (
        "Yang & Lerch (2018): for each feature, the overlap of the distribution of distances within the "
        "test set and of distances between samples and test pieces (kernel density estimates).")


def read_curve(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Lightning's CSV log: metric -> (steps, values), blanks skipped."""
    curves: dict[str, tuple[list[int], list[float]]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k not in ("epoch", "step") and v not in ("", None):
                    steps, values = curves.setdefault(k, ([], []))
                    steps.append(int(row["step"]))
                    values.append(float(v))
    return curves


def training_curves(cfg: DictConfig, runs: dict[str, dict]):
    by_family: dict[str, list[tuple[str, Path]]] = {}
    for d in sorted(Path(cfg.paths.models).glob("*/csv/metrics.csv")):
        conf = d.parents[1] / "config.yaml"
        family = OmegaConf.load(conf).model.family if conf.is_file() else "other"
        by_family.setdefault(family, []).append((d.parents[1].name, d))
    if not by_family:
        raise Skip("no models/*/csv/metrics.csv: run the train stages")
    ncols = min(3, len(by_family))
    nrows = math.ceil(len(by_family) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4 * nrows), squeeze=False)
    for ax in axes.flat[len(by_family):]:
        ax.set_visible(False)
    for ax, (family, items) in zip(axes.flat, sorted(by_family.items()), strict=False):
        for k, (run, path) in enumerate(items):
            curves = read_curve(path)
            for key, ls in (("train/loss", "-"), ("val/loss", "--")):
                if key in curves:
                    ax.plot(*curves[key], ls=ls, color=f"C{k % 10}", lw=1,
                            label=run if key == "train/loss" else None)
        ax.set(title=family, xlabel="step", ylabel="loss (solid: train, dashed: valid)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig, "Training curves", "Training (solid) and validation (dashed) loss of every model, by family."


def clip(score: Score, steps: int) -> Score:
    """The first ``steps`` of a score."""
    tracks = [t.__class__(t.name, tuple(Note(n.start, min(n.end, steps), n.pitch, n.velocity)
                                        for n in t.notes if n.start < steps), t.program, t.is_drum)
              for t in score.tracks]
    return score.with_tracks(t for t in tracks if t.notes)


def piano_rolls(cfg: DictConfig, runs: dict[str, dict], corpus: str):
    samples = Path(cfg.paths.samples)
    rows: list[tuple[str, Score]] = []
    scores = Path(cfg.paths.data) / "interim" / corpus / "scores.jsonl.gz"
    if scores.is_file():
        real = next((s for s in load_scores(scores) if s.meta.get("split") == "test"), None)
        if real is not None:
            rows.append((f"real ({corpus} test): {real.id}", clip(real, ROLL_STEPS)))
    for folder in sorted(samples.glob("*")):
        files = sorted(folder.glob(f"{corpus}_*.mid")) or (
            sorted(folder.glob("*.mid")) if split_run(folder.name)[1] == corpus else [])
        if files:
            score = read_midi(files[0], cfg.corpus.steps_per_quarter)
            rows.append((f"{folder.name}: {files[0].name}", clip(score, ROLL_STEPS)))
    if len(rows) < 2:
        raise Skip(f"no samples for {corpus}: run the sample stages")
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 1.9 * len(rows)), squeeze=False)
    for ax, (title, score) in zip(axes[:, 0], rows, strict=True):
        draw_piano_roll(ax, score, 16, title)
        ax.set_xlim(0, ROLL_STEPS)
        ax.title.set_fontsize(8)
    fig.tight_layout()
    return fig, f"Samples next to a real piece: {corpus}", (
        f"The first {ROLL_STEPS // 16} bars of a test piece of {corpus} (top) and of the first sample "
        "of each model; dashed lines are bars.")


def cross_corpus(cfg: DictConfig, runs: dict[str, dict]):
    files = sorted((Path(cfg.paths.reports) / "cross_corpus").glob("*.json"))
    if not files:
        raise Skip("no reports/cross_corpus/*.json: run the cross_corpus stages")
    data = [json.loads(f.read_text()) for f in files]
    fig, axes = plt.subplots(1, len(data), figsize=(3.6 * len(data), 3.4), squeeze=False)
    for ax, d in zip(axes[0], data, strict=True):
        c = d["corpora"]
        grid = np.array([[d["matrix"][a][b]["bits_per_step"] for b in c] for a in c])
        _heatmap(ax, grid, [f"train {a}" for a in c], [f"test {b}" for b in c], d["model"], cmap="magma_r")
    fig.tight_layout()
    return fig, "Cross-corpus generalization", (
        "As in the MusPy paper (Dong et al. 2020, fig. 5): each model trained on one corpus (rows), test "
        "bits per token on every corpus (columns), same encoding. The diagonal is in-domain.")


def figure_makers(cfg: DictConfig) -> dict[str, Callable]:
    makers: dict[str, Callable] = {
        "metrics_table": metrics_table, "oa_per_feature": oa_per_feature,
        "training_curves": training_curves, "cross_corpus": cross_corpus,
    }
    for name in FAMILIES:  # each family's paper figures
        makers.update(family(name).figures())
    for corpus in cfg.pipeline.corpora:
        makers[f"piano_rolls_{corpus}"] = lambda c, r, corpus=corpus: piano_rolls(c, r, corpus)
    return makers


def make_figures(cfg: DictConfig) -> dict:
    """Write reports/figures/ whole: ``{name}.png`` and ``.svg`` per figure, ``index.json``
    (file, title, caption) and ``skipped.json`` (name -> why)."""
    runs = load_runs(Path(cfg.paths.reports))
    index, skipped = [], {}
    with atomic_dir(Path(cfg.paths.reports) / "figures") as out:
        for name, make in figure_makers(cfg).items():
            try:
                fig, title, caption = make(cfg, runs)
            except Skip as e:
                log.info("figure %s skipped: %s", name, e)
                skipped[name] = str(e)
                continue
            save_figure(fig, out / name, FORMATS)
            index.append({"file": f"{name}.png", "svg": f"{name}.svg", "title": title, "caption": caption})
        write_json_atomic(out / "index.json", index)
        write_json_atomic(out / "skipped.json", skipped)
    log.info("%d figures, %d skipped", len(index), len(skipped))
    return {"figures": [i["file"] for i in index], "skipped": skipped}
