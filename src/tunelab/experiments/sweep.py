"""Sweeps: ``tunelab train -m model=a,b corpus=x,y`` runs every combination through a real
Hydra app, so Hydra's launchers (joblib by default, submitit_local, submitit_slurm) and
sweepers (the grid, or Optuna with ``hparams_search=melody_rnn_optuna``) do the work.

Each job writes its outputs under its own sweep folder, ``{sweep dir}/{job number}/models/``
(and ``checkpoints/``, ``samples/``), unless the command line sets those ``paths``, so jobs
never clobber each other or the DVC-tracked ``models/``; joins one W&B group per sweep
(``sweep-{sweep folder name}``) unless ``logger.group`` is set; validates its config; and
returns ``metrics[optimized_metric]`` to the sweeper when a search sets one.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from tunelab.config import ConfigError, conf_dir, validate
from tunelab.paths import run_name

log = logging.getLogger(__name__)

# The verbs that sweep, and the ``paths`` each of their jobs writes in its own sweep folder.
SWEEPABLE: dict[str, tuple[str, ...]] = {"train": ("models", "checkpoints", "samples")}


def multirun(verb: str, overrides: Sequence[str]) -> None:
    """Run ``tunelab <verb> -m <overrides>`` as a Hydra multirun: one job per combination of
    comma-separated values (or per Optuna trial), launched by ``hydra/launcher``.

    The Hydra app is built here, on ``tunelab.config.conf_dir()``, and run with
    ``sys.argv = ["tunelab-<verb>", "-m", *overrides]``; Hydra never changes the working
    directory and writes its sweep folder under ``logs/multirun/`` (``hydra.sweep.dir``).

    Raises:
        ConfigError: ``verb`` does not sweep, an override names no option or key, or a job's
            config has a bad value (the first failed job's error, one line).
        Exception: whatever else the first failed job raised, as it raised it.
    """
    import hydra
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from hydra.initialize import get_gh_backup, restore_gh_from_backup
    from omegaconf.errors import OmegaConfBaseException

    from tunelab.config import _explain

    if verb not in SWEEPABLE:
        raise ConfigError(f"-m/--multirun: only {', '.join(SWEEPABLE)} runs as a sweep; "
                          f"run `tunelab {verb}` once per setting")
    app = hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(_Job(verb))
    argv, full_error, global_hydra = sys.argv, os.environ.get("HYDRA_FULL_ERROR"), get_gh_backup()
    # Hydra configures logging for the sweep (console, and a log file per job); the CLI's own
    # handler steps aside meanwhile, and the caller's logging is as it was afterwards.
    root, ours = logging.getLogger(), logging.getLogger("tunelab")
    saved = root.level, list(root.handlers), list(ours.handlers)
    ours.handlers.clear()
    sys.argv = [f"tunelab-{verb}", "-m", *overrides]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # a failed job's own exception reaches the CLI (one line)
    try:
        app()
    except (MissingConfigException, ConfigCompositionException, OverrideParseException,
            OmegaConfBaseException) as e:
        # model=a,nope: _explain looks for the one bad option of a sweep's list
        single = [f"{k}={v}" for k, _, vs in (o.partition("=") for o in overrides) for v in vs.split(",")]
        raise ConfigError(_explain(single, e)) from None
    finally:
        sys.argv = argv
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error
        restore_gh_from_backup(global_hydra)
        for h in root.handlers:
            if h not in saved[1]:
                h.close()
        root.setLevel(saved[0])
        root.handlers[:], ours.handlers[:] = saved[1], saved[2]


class _Job:
    """The task function Hydra runs once per job; a module-level class, so that joblib's and
    submitit's workers unpickle it by reference."""

    def __init__(self, verb: str) -> None:
        self.verb = verb

    def __call__(self, cfg: DictConfig) -> Any:
        return sweep_job(self.verb, cfg)


def sweep_job(verb: str, cfg: DictConfig) -> Any:
    """One job of a sweep, inside Hydra's job (``HydraConfig`` is set): point its outputs at
    its sweep folder, join the sweep's W&B group, take its share of the CPU, validate, run
    ``verb``; return ``metrics[cfg.optimized_metric]``, or all metrics when that is null.

    Raises:
        ConfigError: a bad value, or ``optimized_metric`` names no metric of the run.
    """
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hc = HydraConfig.get()
    given = {o.key_or_group for o in OverridesParser.create().parse_overrides(list(hc.overrides.task))}
    job_dir = Path(hc.runtime.output_dir)
    for key in SWEEPABLE[verb]:
        if key in cfg.paths and f"paths.{key}" not in given:
            cfg.paths[key] = str(job_dir / key)
    if "group" in cfg.logger and cfg.logger.group is None:
        cfg.logger.group = f"sweep-{Path(hc.sweep.dir).name}"
    if "name" in cfg.logger and cfg.logger.name is None:  # the jobs of a grid share {model}-{corpus}
        cfg.logger.name = f"{run_name(cfg)}-job{hc.job.num}"
    threads = _threads_per_job(hc.launcher, hc.sweeper)
    if threads is not None:
        torch.set_num_threads(threads)
    validate(cfg)
    _no_ddp_relaunch(cfg.trainer)
    from tunelab.pipeline.train import train

    metrics = train(cfg)
    name = cfg.get("optimized_metric")
    if name is None:
        return metrics
    if name not in metrics:
        raise ConfigError(f"optimized_metric={name} is not a metric of this run; it has: "
                          f"{', '.join(sorted(metrics))}")
    return metrics[name]


def _no_ddp_relaunch(trainer: DictConfig) -> None:
    """Refuse DDP that Lightning would start itself: it re-executes ``sys.argv`` once per
    device, which inside a sweep's job is the launcher's worker, not ``tunelab train``.
    Under torchrun or SLURM (submitit_slurm with tasks_per_node) the ranks exist already."""
    strategy = str(trainer.get("strategy", "auto"))
    several = str(trainer.get("devices", 1)) != "1" or int(trainer.get("num_nodes", 1)) > 1
    if (strategy.startswith("ddp") and "spawn" not in strategy and several
            and not {"LOCAL_RANK", "SLURM_JOB_ID"} & set(os.environ)):
        raise ConfigError(f"trainer.strategy={strategy}: DDP cannot start inside a sweep's job; use "
                          "hydra/launcher=submitit_slurm hydra.launcher.tasks_per_node=<GPUs>, or torchrun "
                          "for a single run")


def _threads_per_job(launcher: DictConfig, sweeper: DictConfig) -> int | None:
    """Torch threads for a job that shares this machine's cores with the sweep's other jobs,
    so that parallel jobs don't oversubscribe the CPU (OpenMP threads spinning on shared
    cores can slow a run tenfold); None leaves torch's default.

    joblib: cores // N for N jobs at once (``n_jobs``: -1 all cores, -2 all but one), capped
    by the sweeper's batch (Optuna's ``n_jobs``, the grid's ``max_batch_size``).
    submitit: ``cpus_per_task`` if set; else submitit_local, which starts a batch's jobs
    all at once, gives cores // batch, or 1 when the batch size is unknown (a grid); on SLURM
    the allocation bounds the threads already.
    """
    import joblib

    target = str(launcher.get("_target_", ""))
    cpus = joblib.cpu_count()
    batch = sweeper.get("n_jobs") or sweeper.get("max_batch_size")
    if "joblib" in target:
        n = launcher.get("n_jobs") or 1
        n = max(1, cpus + 1 + n if n < 0 else n)
        n = min(n, batch) if batch else n
    elif "submitit" in target and launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    elif target.endswith("LocalLauncher"):
        n = batch or cpus
    else:
        return None
    log.info("%d jobs at once on %d cores: %d torch threads each", n, cpus, max(1, cpus // n))
    return max(1, cpus // n)
