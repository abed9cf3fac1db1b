"""Sweeps (`tunelab train -m ...`) through Hydra's launchers and sweepers, on the children's
songs corpus with tiny models: joblib, submitit_local, Optuna, W&B groups, bad values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import joblib
import pytest
import yaml

from conftest import tiny_overrides
from tunelab.cli import main
from tunelab.tracking import read_offline_run

REPO = Path(__file__).resolve().parents[1]
OWN_PATHS = ("paths.models=", "paths.samples=", "paths.checkpoints=", "paths.data=")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """children, tokenized for melody_rnn_basic (melody_onehot) and _attention (key_melody)."""
    tmp = tmp_path_factory.mktemp("sweep_data")
    args = [*tiny_overrides(tmp), "corpus=children"]
    for verb in ("download", "extract", "tokenize"):
        assert main([verb, *args]) == 0, verb
    assert main(["tokenize", *args, "encoding=key_melody"]) == 0
    return tmp / "data"


def sweep_args(tmp: Path, data: Path, *extra: str) -> list[str]:
    """The tiny overrides, less the output paths a sweep puts in each job's folder."""
    keep = [o for o in tiny_overrides(tmp) if not o.startswith(OWN_PATHS)]
    return [*keep, f"paths.data={data}", "corpus=children", *extra]


def snapshot(*folders: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for f in folders if f.is_dir() for p in [f, *f.rglob("*")]}


def job_dirs(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def trained(job: Path) -> tuple[dict, dict]:
    """The one model a job trained: its train metrics and resolved config."""
    (run,) = (job / "models").iterdir()
    assert (run / "model.ckpt").is_file()
    return (json.loads((run / "train_metrics.json").read_text()),
            yaml.safe_load((run / "config.yaml").read_text()))


def test_joblib_grid_trains_one_model_per_job_in_its_sweep_folder(data, tmp_path):
    repo_outputs = [REPO / "models", REPO / "checkpoints", Path.cwd() / "models", Path.cwd() / "checkpoints"]
    before = snapshot(*repo_outputs)
    assert main(["train", "-m", *sweep_args(tmp_path, data, "model=melody_rnn_basic,melody_rnn_attention",
                                            "hydra.launcher.n_jobs=2")]) == 0
    (sweep,) = (tmp_path / "logs/multirun").iterdir()  # hydra.sweep.dir: ${paths.logs}/multirun/{time}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", sweep.name)
    jobs = job_dirs(sweep)
    assert [sorted(p.name for p in (j / "models").iterdir()) for j in jobs] == [
        ["melody_rnn_basic-children"], ["melody_rnn_attention-children"]]
    cpus = joblib.cpu_count()
    for job in jobs:
        metrics, cfg = trained(job)
        assert metrics["steps"] == 4 and metrics["val/loss"] > 0
        assert cfg["paths"]["models"] == str(job / "models")
        assert cfg["paths"]["checkpoints"] == str(job / "checkpoints")
        assert f"2 jobs at once on {cpus} cores: {max(1, cpus // 2)} torch threads each" in (
            job / "tunelab.log").read_text()
    assert snapshot(*repo_outputs) == before  # nothing in the DVC-tracked models/


def test_submitit_local_runs_each_job_as_its_own_process(data, tmp_path):
    sweep = tmp_path / "submitit"
    assert main(["train", "-m", *sweep_args(tmp_path, data, "hydra/launcher=submitit_local",
                                            "hydra.launcher.timeout_min=5", "model.net.hidden_size=8,16",
                                            f"hydra.sweep.dir={sweep}")]) == 0
    jobs = job_dirs(sweep)
    sizes = [trained(j)[1]["model"]["net"]["hidden_size"] for j in jobs]
    assert sizes == [8, 16]  # the same {model}-{corpus} twice, in two folders
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2


def test_optuna_search_minimises_the_validation_loss(data, tmp_path):
    sweep = tmp_path / "optuna"
    assert main(["train", "-m", *sweep_args(tmp_path, data, "hparams_search=melody_rnn_optuna",
                                            "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}")]) == 0
    jobs = job_dirs(sweep)
    assert len(jobs) == 2
    losses = [trained(j)[0]["val/loss"] for j in jobs]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(min(losses))
    # the command line fixed model.net.hidden_size=16; the rest of the search space was searched
    assert set(results["best_params"]) == {"model.optimizer.lr", "model.net.dropout"}
    best = jobs[losses.index(min(losses))]
    best_lr = results["best_params"]["model.optimizer.lr"]
    assert trained(best)[1]["model"]["optimizer"]["lr"] == pytest.approx(best_lr)


def test_each_job_is_an_offline_wandb_run_in_the_sweeps_group(data, tmp_path):
    sweep = tmp_path / "lr-sweep"
    assert main(["train", "-m", *sweep_args(tmp_path, data, "logger=wandb", "model.optimizer.lr=0.01,0.001",
                                            f"hydra.sweep.dir={sweep}")]) == 0
    runs = [read_offline_run(d) for d in sorted((tmp_path / "logs/wandb").glob("offline-run-*"))]
    assert len(runs) == 2
    assert {r["group"] for r in runs} == {"sweep-lr-sweep"}
    assert sorted(r["name"] for r in runs) == [f"melody_rnn_basic-children-job{n}" for n in (0, 1)]
    assert sorted(r["config"]["model"]["optimizer"]["lr"] for r in runs) == [0.001, 0.01]
    assert {r["config"]["paths"]["models"] for r in runs} == {str(j / "models") for j in job_dirs(sweep)}


def test_bad_value_in_a_sweep_is_one_line_and_nonzero(data, tmp_path, capsys):
    bad = tmp_path / "bad"
    assert main(["train", "-m", *sweep_args(tmp_path, data, "model.net.hidden_size=8,16",
                                            "trainer.max_steps=-1", f"hydra.sweep.dir={bad}")]) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # after Hydra's "Error executing job with overrides: [...]"
    assert last == "tunelab train: config error: trainer.max_steps=-1: must be a positive integer"
    assert "Traceback" not in err
    assert not list(bad.glob("*/models/*"))


def test_missing_optimized_metric_is_named_and_explicit_paths_are_kept(data, tmp_path, capsys):
    own = tmp_path / "my_models"
    assert main(["train", "-m", *sweep_args(tmp_path, data, "optimized_metric=val/nope",
                                            f"paths.models={own}", f"hydra.sweep.dir={tmp_path / 'm'}")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("tunelab train: config error: optimized_metric=val/nope is not a metric")
    assert "val/loss" in last
    assert (own / "melody_rnn_basic-children/model.ckpt").is_file()  # paths.models given: used as is


@pytest.mark.parametrize("argv, message", [
    (["sample", "-m", "sample.temperature=0.8,1.0"], "tunelab sample: config error: -m/--multirun: only"),
    (["train", "-m", "model=nope,nope2"], "tunelab train: config error: model=nope"),
    (["train", "-m", "--cfg"], "tunelab train: config error: --cfg prints one config"),
])
def test_sweep_usage_errors_are_one_line(argv, message, capsys, tmp_path):
    assert main([*argv, f"paths.logs={tmp_path}", f"paths.data={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err


def test_ddp_inside_a_sweep_job_is_refused(tmp_path, capsys):
    # Lightning would re-execute the launcher's worker once per device; not tunelab train
    assert main(["train", "-m", "++trainer.strategy=ddp", "trainer.devices=2", f"paths.logs={tmp_path}",
                 f"paths.data={tmp_path}", f"hydra.sweep.dir={tmp_path / 'ddp'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("tunelab train: config error: trainer.strategy=ddp: DDP cannot")
    assert "Traceback" not in err


def test_hparams_search_without_multirun_is_refused(capsys):
    assert main(["train", "hparams_search=melody_rnn_optuna"]) == 2
    assert "add -m" in capsys.readouterr().err
