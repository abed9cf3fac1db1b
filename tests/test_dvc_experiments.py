"""DVC experiments over the real `experiment` stage: `dvc exp run -S` composes params.yaml
from conf/ (DVC's Hydra integration), a queued grid runs with `dvc queue start -j 2`, and
`dvc exp show` compares the runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import tunelab
from conftest import MIRROR
from tunelab.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["corpus=children", "logger=csv", "trainer.max_steps=4", "trainer.val_check_interval=2",
        "model.batch_size=8", "model.seq_len=32", "model.net.hidden_size=16", "sample.num_outputs=2",
        "sample.num_steps=32", "evaluate.max_reference_pieces=10"]


def dvc_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", "WANDB_MODE": "offline"}


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=dvc_env(), capture_output=True,
                          text=True, timeout=600)
    if check:
        assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def start_workers(repo: Path, workers: int) -> None:
    """`dvc queue start`, not waited on: its workers are forked children that keep any
    inherited stdout pipe open, so a captured run would block until they all exit."""
    with open(repo.parent / "queue-start.log", "ab") as log:
        subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", str(workers)], cwd=repo,
                       env=dvc_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=120)


def drain_queue(repo: Path, workers: int, deadline_s: float = 900) -> str:
    """Start workers and poll `dvc queue status` until nothing is queued or running. A worker
    can exit with tasks still queued (treeverse/dvc#10562); then start workers again, as
    DVC's docs advise, at most twice."""
    start_workers(repo, workers)
    restarts, deadline = 0, time.time() + deadline_s
    status = ""
    while time.time() < deadline:
        status = dvc(repo, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        if "Running" not in status and "0 active, 0 idle" in status and restarts < 2:
            restarts += 1
            start_workers(repo, workers)
        time.sleep(3)
    dvc(repo, "queue", "stop", check=False)
    return status


def queue_logs(repo: Path, status: str) -> str:
    """Each task's log, for the failure message."""
    lines = status.splitlines()[1:]
    tasks = [line.split()[0] for line in lines if line.strip() and not line.startswith("Worker")]
    return "".join(f"\n--- {t}\n" + dvc(repo, "queue", "logs", t, check=False).stdout[-1500:] for t in tasks)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A DVC project with tunelab's conf/, its `experiment` stage and Hydra settings, and
    the children corpus tokenized and tracked."""
    repo = tmp_path_factory.mktemp("exp")
    shutil.copytree(ROOT / "conf", repo / "conf")
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["experiment"]
    stage["deps"] = [d for d in stage["deps"] if d in ("data/interim", "data/processed")]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"experiment": stage}}))
    data = [f"paths.data={repo}/data", f"corpus.mirror={MIRROR}", "corpus=children"]
    for verb, extra in (("download", []), ("extract", []), ("tokenize", ["encoding=melody_onehot"]),
                        ("tokenize", ["encoding=melody_mono"]), ("tokenize", ["encoding=lookback"])):
        assert main([verb, *data, *extra]) == 0
    shutil.rmtree(repo / "data/raw")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "ci@tunelab"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.name", "ci"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    section = (ROOT / ".dvc/config").read_text().split("[hydra]")[1].split("[")[0]
    ours = dict(line.split(" = ") for line in section.strip().splitlines())
    for key, value in ours.items():
        dvc(repo, "config", f"hydra.{key.strip()}", value.strip())
    dvc(repo, "config", "hydra.plugins_path", str(Path(tunelab.__file__).parents[1]))  # the resolvers
    dvc(repo, "add", "-q", "data/interim", "data/processed")
    (repo / ".gitignore").write_text("/logs/\n/checkpoints/\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=repo, check=True)
    return repo


def test_exp_run_set_param_composes_params_from_conf(repo):
    dvc(repo, "exp", "run", "experiment", "-n", "mono", "-S", "model=melody_rnn_mono",
        *(x for o in TINY for x in ("-S", o)))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["model"]["name"] == "melody_rnn_mono" and params["corpus"]["name"] == "children"
    assert params["model"]["net"]["hidden_size"] == 16 and params["trainer"]["max_steps"] == 4
    assert "styles" in params and "pipeline" in params  # the whole composition, not a patch
    metrics = json.loads((repo / "experiment/metrics.json").read_text())
    assert metrics["steps"] == 4  # the stage trained with the experiment's params
    assert (repo / "experiment/run/models/melody_rnn_mono-children/model.ckpt").is_file()
    assert len(list((repo / "experiment/run/samples/melody_rnn_mono-children").glob("*.mid"))) == 2


def test_queued_grid_runs_in_parallel_and_shows(repo):
    dvc(repo, "exp", "run", "experiment", "--queue", "-S", "model=melody_rnn_basic,melody_rnn_lookback",
        "-S", "seed=1", *(x for o in TINY for x in ("-S", o)))
    queued = dvc(repo, "queue", "status").stdout
    assert queued.count("Queued") == 2, queued
    status = drain_queue(repo, workers=2)
    assert status.count("Success") == 2, status + queue_logs(repo, status)
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    runs = [e for rev in shown for e in (rev.get("experiments") or []) for e in e["revs"]]
    found = set()
    for run in runs:
        data = run["data"]
        params = data["params"]["params.yaml"]["data"]
        metrics = data["metrics"]["experiment/metrics.json"]["data"]
        assert metrics["steps"] == 4 and metrics["test/bits_per_note"] > 0
        found.add((params["model"]["name"], params["seed"]))
    assert {("melody_rnn_basic", 1), ("melody_rnn_lookback", 1)} <= found
