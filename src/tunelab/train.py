"""The train stage: fit one model on one corpus's token arrays with Lightning."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from tunelab.checkpoint import save_checkpoint
from tunelab.config import ConfigError
from tunelab.corpora.download import atomic_dir, write_json_atomic
from tunelab.datamodule import EventDataModule
from tunelab.models.lm_module import EventLMModule
from tunelab.models.vae_module import MusicVAEModule
from tunelab.paths import model_dir, processed_dir, run_name, training_corpora
from tunelab.resume import PeriodicCheckpoint, checkpoint_dir, find_resumable
from tunelab.tokenize import MELODY_ENCODINGS, encoding_for
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


def build_module(cfg: DictConfig, encoding) -> L.LightningModule:
    net = instantiate(cfg.model.net)
    if cfg.model.family == "music_vae":
        return build_vae_module(cfg, net, encoding)
    if getattr(net, "token_inputs", False):
        if net.num_classes != len(encoding.vocab):
            raise ConfigError(f"model.net.num_classes={net.num_classes} but encoding "
                              f"{cfg.model.encoding} has {len(encoding.vocab)} tokens")
    elif net.input_size != encoding.input_size or net.num_classes != len(encoding.vocab):
        raise ConfigError(
            f"model.net: input_size={net.input_size}, num_classes={net.num_classes} but encoding "
            f"{cfg.model.encoding} has {encoding.input_size} inputs and {len(encoding.vocab)} classes")
    if hasattr(net, "set_wait_steps"):  # MuseNet: how far each token moves time
        net.set_wait_steps(encoding.wait_steps)
    # Magenta's "no event" accuracy counts the label of NO_EVENT (0, except key-melody's);
    # it means nothing for other encodings.
    no_event = getattr(encoding, "default_event_label", 0) if cfg.model.encoding in MELODY_ENCODINGS else None
    return EventLMModule(net, instantiate(cfg.model.optimizer), no_event_label=no_event,
                         warmup_steps=cfg.model.get("warmup_steps", 0))


def build_vae_module(cfg: DictConfig, net, encoding) -> MusicVAEModule:
    shape = (net.num_classes, net.num_parts, net.window_steps)
    want = (len(encoding.vocab), encoding.num_parts, encoding.window_steps)
    if shape != want:
        raise ConfigError(f"model.net: {shape[0]} classes x {shape[1]} parts x {shape[2]} steps but "
                          f"encoding {cfg.model.encoding} has {want[0]} x {want[1]} x {want[2]}")
    return MusicVAEModule(net, instantiate(cfg.model.optimizer), **cfg.model.vae)


def setup(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, list[str]]:
    """The module, its data and the vocabulary saved with the checkpoint."""
    if cfg.model.family == "jukebox":  # raw audio: its own windows and modules
        from tunelab.jukebox import training_setup

        module, data = training_setup(cfg)
        return module, data, list(cfg.model.corpora)  # the style ids are its only vocabulary
    encoding = encoding_for(cfg, cfg.model.encoding)
    module = build_module(cfg, encoding)
    folders = [processed_dir(cfg, corpus=c) for c in training_corpora(cfg)]
    augment = cfg.model.get("augment")
    data = EventDataModule(folders, encoding, cfg.model.batch_size, cfg.model.seq_len, seed=cfg.seed,
                           net=module.net, augment=encoding.augmenter(**augment) if augment else None)
    return module, data, list(encoding.vocab.tokens)


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
    trainer = make_trainer(cfg, loggers, [PeriodicCheckpoint(state, cfg)])
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resume_from)
    finally:
        for lg in loggers:
            if isinstance(lg, WandbLogger) and trainer.is_global_zero:
                lg.experiment.finish()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["steps"] = int(trainer.global_step)
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
