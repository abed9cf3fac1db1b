"""The train stage: fit one model on one corpus's token arrays with Lightning."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.checkpoint import save_checkpoint
from tunelab.convergence import BestWeights, early_stopping
from tunelab.families import family
from tunelab.paths import model_dir, run_name
from tunelab.resume import PeriodicCheckpoint, checkpoint_dir, find_resumable
from tunelab.tracking import wandb_group, wandb_name

log = logging.getLogger(__name__)


def make_loggers(cfg: DictConfig, out: Path) -> list[Logger]:
    """CSV metrics (``out/csv/metrics.csv``) always; W&B (offline by default) unless logger=csv."""
    loggers: list[Logger] = [CSVLogger(out, name="", version="csv")]
    if cfg.logger.kind == "wandb":
        os.environ.setdefault("WANDB_MODE", cfg.logger.mode)
        save = Path(cfg.paths.logs)
        save.mkdir(parents=True, exist_ok=True)
        loggers.append(WandbLogger(
            project=cfg.logger.project, name=wandb_name(cfg), save_dir=str(save),
            group=wandb_group(cfg), job_type="train",
            config=OmegaConf.to_container(cfg, resolve=True)))
    return loggers


def setup(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, list[str]]:
    """The module (``model.module`` around ``model.net``), its data and the vocabulary saved
    with the checkpoint, as the model's family builds them."""
    built = family(cfg.model.family).build(cfg)
    return built.module, built.data, built.vocab


def build_module(cfg: DictConfig, encoding: Any) -> L.LightningModule:
    """The LightningModule alone, for an encoding already built (tests, benchmarks)."""
    return family(cfg.model.family).build_module(cfg, encoding)


def make_trainer(cfg: DictConfig, loggers: list[Logger] | bool, callbacks: list[L.Callback],
                 **overrides: object) -> L.Trainer:
    """Lightning's Trainer from the ``trainer`` group: cpu, gpu (bf16) or ddp (any launcher:
    torchrun, SLURM, or Lightning's own re-execution of the command); ``overrides`` replace
    single Trainer arguments (the GPU benchmark's precision, steps, no validation)."""
    t = cfg.trainer
    kwargs = dict(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.get("num_nodes", 1),
        strategy=t.get("strategy", "auto"), precision=t.precision, max_steps=t.max_steps,
        val_check_interval=t.val_check_interval, check_val_every_n_epoch=None,
        log_every_n_steps=t.log_every_n_steps, gradient_clip_val=cfg.model.clip_norm,
        logger=loggers, callbacks=callbacks, enable_checkpointing=False,
        default_root_dir=str(Path(cfg.paths.checkpoints)), num_sanity_val_steps=0,
        deterministic=t.get("deterministic", True), enable_model_summary=False)
    return L.Trainer(**{**kwargs, **overrides})


def train(cfg: DictConfig) -> dict:
    """Train, then write models/{model}-{corpus}/ (checkpoint, config, metrics) whole.

    The resumable state lives in ``{paths.checkpoints}/{run}/`` while training (see
    :mod:`tunelab.resume`); a rerun continues from it, and it is removed once the model is
    written. Under DDP every rank trains and rank 0 writes the outputs.
    """
    L.seed_everything(cfg.seed, workers=True)
    module, data, vocab = setup(cfg)
    state = checkpoint_dir(cfg)
    resume_from = find_resumable(cfg)
    loggers = make_loggers(cfg, state)
    best = BestWeights()  # before PeriodicCheckpoint: the saved state holds this validation's best
    stopper = early_stopping(cfg)
    callbacks = [best, *([stopper] if stopper else []), PeriodicCheckpoint(state, cfg)]
    trainer = make_trainer(cfg, loggers, callbacks)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resume_from)
    finally:
        for lg in loggers:
            if isinstance(lg, WandbLogger) and trainer.is_global_zero:
                lg.experiment.finish()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["steps"] = int(trainer.global_step)
    metrics["stopped_early"] = int(trainer.global_step) < trainer.max_steps
    if best.restore(module):  # the model written is the best validation one, not the last
        metrics.update({"best_step": best.step, f"best_{best.monitor}": best.best})
    if not trainer.is_global_zero:
        return metrics
    loggers[0].save()
    with atomic_dir(model_dir(cfg)) as out:
        shutil.copytree(state / "csv", out / "csv")
        save_checkpoint(out / "model.ckpt", module.net, cfg, vocab)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        write_json_atomic(out / "train_metrics.json", metrics)
    shutil.rmtree(state, ignore_errors=True)
    if state.parent.is_dir() and not any(state.parent.iterdir()):
        state.parent.rmdir()  # the last run of a (sweep job's) checkpoint folder leaves nothing behind
    log.info("%s: %s", run_name(cfg), metrics)
    return metrics
