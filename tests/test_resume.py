"""Resume after a kill, and seeded reproducibility, through the real `tunelab train`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import tiny_overrides
from tunelab.cli import main
from tunelab.config import load_config
from tunelab.resume import LAST, checkpoint_dir, find_resumable

RUN = "melody_rnn_basic-children"
# Several epochs (the tiny children corpus is 16 batches of 8), a validation and checkpoint
# every 10 steps, dropout on, so RNG and data position both matter.
STEPS = ["trainer.max_steps=80", "trainer.val_check_interval=10", "trainer.log_every_n_steps=5",
         "model.net.dropout=0.2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    args = [*tiny_overrides(tmp), "corpus=children"]
    for verb in ("download", "extract", "tokenize"):
        assert main([verb, *args]) == 0, verb
    return tmp, args


def run_args(base: list[str], tmp: Path, name: str) -> list[str]:
    return [*base, *STEPS, f"paths.models={tmp}/{name}/models", f"paths.checkpoints={tmp}/{name}/ckpt"]


def trained(tmp: Path, name: str) -> tuple[dict, dict, str]:
    out = tmp / name / "models" / RUN
    weights = torch.load(out / "model.ckpt", weights_only=False)["state_dict"]
    metrics = json.loads((out / "train_metrics.json").read_text())
    return weights, metrics, (out / "csv/metrics.csv").read_text()


def assert_same_run(a: tuple, b: tuple) -> None:
    wa, ma, ca = a
    wb, mb, cb = b
    assert wa.keys() == wb.keys()
    for k in wa:  # bitwise: same data, same RNG draws, same kernels, one process each
        assert torch.equal(wa[k], wb[k]), k
    assert ma == mb
    assert ca == cb  # the whole training curve, also the part logged before the kill


@pytest.fixture(scope="module")
def uninterrupted(corpus):
    tmp, base = corpus
    assert main(["train", *run_args(base, tmp, "full")]) == 0
    return trained(tmp, "full")


def test_same_seed_same_run_other_seed_differs(corpus, uninterrupted):
    tmp, base = corpus
    assert main(["train", *run_args(base, tmp, "again")]) == 0
    assert_same_run(trained(tmp, "again"), uninterrupted)
    assert main(["train", *run_args(base, tmp, "seed7"), "seed=7"]) == 0
    other = trained(tmp, "seed7")
    assert other[1]["val/loss"] != uninterrupted[1]["val/loss"]


def train_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tunelab.cli", "train", *args]


def cli_train(args: list[str]) -> None:
    proc = subprocess.run(train_command(args), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]


def test_sigkill_mid_epoch_then_rerun_resumes_to_the_same_weights(corpus):
    """Every run in a fresh process, as a user's are: in the full suite an in-process rerun
    differed in its last bits from the subprocess runs (not when run alone), so the pytest
    process's state left by earlier tests must not enter a bitwise comparison."""
    tmp, base = corpus
    cli_train(run_args(base, tmp, "full_cli"))
    uninterrupted = trained(tmp, "full_cli")
    args = run_args(base, tmp, "killed")
    last = tmp / "killed/ckpt" / RUN / LAST
    proc = subprocess.Popen(train_command(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    step, deadline = 0, time.time() + 120
    while step < 60 and time.time() < deadline:  # past the first epoch and a validation
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        if last.is_file():
            step = torch.load(last, weights_only=False)["global_step"]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: what a reclaimed spot instance does
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp / "killed/models" / RUN).exists()  # nothing half-written in the outputs
    killed_at = torch.load(last, weights_only=False)["global_step"]
    assert 60 <= killed_at < 80

    cli_train(args)  # the same command again
    assert_same_run(trained(tmp, "killed"), uninterrupted)
    assert not (tmp / "killed/ckpt" / RUN).exists()  # the resumable state goes once the model is written


def test_stale_or_foreign_checkpoints_are_not_loaded(corpus, tmp_path, caplog):
    _, base = corpus
    args = [*base, *STEPS, f"paths.checkpoints={tmp_path}"]
    cfg = load_config(args)
    folder = checkpoint_dir(cfg)
    folder.mkdir(parents=True)
    (folder / f"{LAST}.part").write_bytes(b"half a checkpoint")  # a kill during a save
    assert find_resumable(cfg) is None
    (folder / LAST).write_bytes(b"not a checkpoint")
    assert find_resumable(cfg) is None and "unreadable" in caplog.text

    def saved_with(**changes) -> None:
        conf = OmegaConf.to_container(cfg, resolve=True)
        conf.update(changes)
        torch.save({"tunelab": {"config": conf}}, folder / LAST)

    saved_with()
    assert find_resumable(cfg) == folder / LAST
    assert find_resumable(load_config([*args, "sample.temperature=0.5"])) == folder / LAST  # not training
    assert find_resumable(load_config([*args, "resume=false"])) is None
    assert find_resumable(load_config([*args, "trainer.max_steps=81"])) is None  # another schedule
    saved_with(seed=1)
    assert find_resumable(cfg) is None and "seed" in caplog.text


class _Stopped(RuntimeError):
    """A kill at an exact step (in process, so the position is exact)."""


# 129 training melodies: batch 8 gives 17 batches an epoch, 43 gives 3, 256 gives 1.
@pytest.mark.parametrize("case, extra, stop_at, saved", [
    ("mid_epoch", ["model.batch_size=8"], 8, True),              # step 8 of a 17-batch epoch
    ("epoch_end", ["model.batch_size=43"], 6, True),             # the checkpoint on an epoch's last batch
    ("one_batch_epochs", ["model.batch_size=256"], 16, True),    # every checkpoint at an epoch boundary
    ("during_validation", ["model.batch_size=8"], 16, False),    # killed before step 16's checkpoint
])
def test_resume_is_exact_wherever_the_checkpoint_falls(corpus, monkeypatch, case, extra, stop_at, saved):
    from tunelab.resume import PeriodicCheckpoint

    tmp, base = corpus
    steps = ["trainer.max_steps=24", "trainer.val_check_interval=" + ("6" if case == "epoch_end" else "8"),
             "trainer.log_every_n_steps=2", "model.net.dropout=0.2", *extra]

    def args(name: str) -> list[str]:
        return [*base, *steps, f"paths.models={tmp}/{case}-{name}/models",
                f"paths.checkpoints={tmp}/{case}-{name}/ckpt"]

    assert main(["train", *args("full")]) == 0
    save = PeriodicCheckpoint.save

    def save_then_stop(self, trainer):
        if saved:
            save(self, trainer)
        if trainer.global_step == stop_at:
            raise _Stopped
        if not saved:
            save(self, trainer)

    monkeypatch.setattr(PeriodicCheckpoint, "save", save_then_stop)
    assert main(["train", *args("killed")]) == 1  # the stage fails; last.ckpt stays
    last = torch.load(tmp / f"{case}-killed/ckpt" / RUN / LAST, weights_only=False)["global_step"]
    assert last == (stop_at if saved else stop_at - 8)
    monkeypatch.setattr(PeriodicCheckpoint, "save", save)
    assert main(["train", *args("killed")]) == 0
    assert_same_run(trained(tmp, f"{case}-killed"), trained(tmp, f"{case}-full"))
