"""`tunelab experiment`: one run end to end -- train, sample, evaluate -- of the model and
corpus that params.yaml selects. It is the `experiment` stage that DVC experiments drive:

    dvc exp run experiment -S model=music_transformer -S corpus=jazz -S trainer.max_steps=2000
    dvc exp run experiment --queue -S 'model=melody_rnn_basic,melody_rnn_lookback' && dvc queue start -j 2
    dvc exp show --only-changed

DVC's Hydra integration (.dvc/config) composes params.yaml from conf/ with the -S overrides;
the stage reads it (tunelab.config.apply_params). Outputs: experiment/run/{models,samples,
reports}/ and the flat headline metrics experiment/metrics.json, which `dvc exp show` lists.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.tracking import flatten

log = logging.getLogger(__name__)
OUT = Path("experiment")
# the relative (mgeval) metrics are per feature; the summary keeps their means
RELATIVE_SUMMARY = ("mean_oa", "mean_kl")


def headline(train: dict, evaluation: dict) -> dict[str, float]:
    """The numbers `dvc exp show` compares: training metrics and the evaluation's, with the
    relative metrics reduced to their means."""
    evaluation = dict(evaluation)
    if isinstance(evaluation.get("relative"), dict):
        evaluation["relative"] = {k: evaluation["relative"][k] for k in RELATIVE_SUMMARY
                                  if k in evaluation["relative"]}
    return flatten({**train, **evaluation})  # train/loss, val/loss, steps; valid/.., test/.., samples/..


def run_experiment(cfg: DictConfig, out: Path = OUT) -> dict[str, float]:
    """Train, sample and evaluate ``cfg``'s model on its corpus under ``out/run``; write
    ``out/metrics.json``. Both are replaced whole, only once every step has succeeded."""
    from tunelab.pipeline.evaluate import evaluate
    from tunelab.pipeline.sample import sample
    from tunelab.pipeline.train import train

    with atomic_dir(out / "run") as run:
        cfg = cfg.copy()
        for key in ("models", "samples", "reports"):
            OmegaConf.update(cfg, f"paths.{key}", str(run / key))
        train_metrics = train(cfg)
        sample(cfg)
        evaluation = evaluate(cfg)
    metrics = headline(train_metrics, evaluation)
    write_json_atomic(out / "metrics.json", metrics)
    log.info("experiment %s on %s: %d metrics in %s", cfg.model.name, cfg.corpus.name, len(metrics),
             out / "metrics.json")
    return metrics
