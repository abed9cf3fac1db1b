"""The quality stage (`tunelab check`): gates on reports/metrics/ that say whether the
default models learned, one line per unmet gate and a non-zero exit (dvc repro fails).

Thresholds live in ``quality`` (conf/config.yaml); every gate's measured value, threshold
and verdict go to reports/quality.json, met or not.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import DictConfig

from tunelab.atomic import write_json_atomic

log = logging.getLogger(__name__)

TOKEN_FAMILIES = ("melody_rnn", "music_transformer", "performance_rnn")


@dataclass
class Gate:
    run: str
    what: str
    value: float | None
    threshold: float
    higher_is_better: bool

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        value = "missing" if self.value is None else f"{self.value:.4g}"
        return f"{self.run}: {self.what} = {value}, needs {sign} {self.threshold:.4g}"


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _get(d: dict, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return float(d) if isinstance(d, int | float) else None


def _nll_gate(run: str, metrics: dict, margin: float) -> Gate:
    """Test NLL at least ``margin`` below the n-gram baseline's, as a ratio."""
    nll, base = _get(metrics, "test", "nll_per_step"), _get(metrics, "ngram_baseline", "nll_per_step")
    ratio = None if nll is None or not base else nll / base
    return Gate(run, "test NLL / n-gram NLL", ratio, 1.0 - margin, False)


def gates(metrics_dir: Path, q: DictConfig) -> Iterator[Gate]:
    """Every gate the metrics in ``metrics_dir`` can be held to."""
    for path in sorted(metrics_dir.glob("*.json")):
        run, m = path.stem, _read(path)
        model = run.rsplit("-", 1)[0]
        if model.startswith(("melody_rnn", "performance_rnn")) or model.startswith(
                ("music_transformer", "transformer_baseline")) and "ngram_baseline" in m:
            yield _nll_gate(run, m, q.ngram_margin)
        elif model == "musenet":
            for style, sm in m.get("styles", {}).items():
                yield _nll_gate(f"{run} ({style})", sm, q.ngram_margin)
        elif model == "music_vae_mel_2bar":
            test = m.get("test", {})
            yield Gate(run, "teacher-forced accuracy", _get(test, "accuracy_teacher_forced"),
                       q.vae_2bar_teacher_forced_accuracy, True)
            sampled, floor = _get(test, "accuracy_sampled"), _get(test, "accuracy_majority")
            yield Gate(run, "sampled accuracy - majority floor",
                       None if sampled is None or floor is None else sampled - floor,
                       q.vae_2bar_sampled_margin, True)
        elif model.startswith("music_vae"):
            test = m.get("test", {})
            acc, floor = _get(test, "accuracy_teacher_forced"), _get(test, "accuracy_majority")
            yield Gate(run, "teacher-forced accuracy - majority floor",
                       None if acc is None or floor is None else acc - floor, q.vae_16bar_margin, True)
        elif model == "jukebox":
            yield Gate(run, "VQ-VAE level-0 spectral convergence",
                       _get(m, "vqvae", "level_0", "spectral_convergence"), q.jukebox_spectral_convergence,
                       False)
            for style, sm in m.get("styles", {}).items():
                own, others = sm.get("chroma_kl_to_own_style"), sm.get("chroma_kl_to_other_styles") or {}
                margin = None if own is None or not others else min(others.values()) - own
                yield Gate(f"{run} ({style})", "chroma KL to other styles - to own style", margin, 0.0, True)
    jsb = metrics_dir / "music_transformer-jsb.json"
    if jsb.is_file():
        valid = _get(_read(jsb), "valid", "nll_per_step")
        yield Gate("music_transformer-jsb", "validation NLL", valid, q.jsb_valid_nll, False)
        vanilla = metrics_dir / "transformer_baseline-jsb.json"
        base = _get(_read(vanilla), "valid", "nll_per_step") if vanilla.is_file() else None
        yield Gate("music_transformer-jsb", "validation NLL - vanilla baseline's",
                   None if valid is None or base is None else valid - base, 0.0, False)


def check(cfg: DictConfig) -> int:
    """Write reports/quality.json; print each unmet gate on one line; 1 if any, else 0."""
    metrics_dir = Path(cfg.paths.reports) / "metrics"
    if not metrics_dir.is_dir() or not any(metrics_dir.glob("*.json")):
        raise FileNotFoundError(f"{metrics_dir}: no metrics to check; "
                                "run `dvc repro` (the evaluate stages) first")
    found = list(gates(metrics_dir, cfg.quality))
    unmet = [g for g in found if not g.met]
    write_json_atomic(Path(cfg.paths.reports) / "quality.json",
                      {"gates": len(found), "unmet": len(unmet),
                       "results": [{**asdict(g), "met": g.met} for g in found]})
    for g in unmet:
        print(f"quality gate unmet: {g.line()}", file=sys.stderr)
    log.info("quality: %d of %d gates met (reports/quality.json)", len(found) - len(unmet), len(found))
    return 1 if unmet else 0
