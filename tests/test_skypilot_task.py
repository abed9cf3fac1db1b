"""cloud/aws-gpu.sky.yaml loads with SkyPilot's own loader, the one `sky launch` uses.

Offline and without credentials: HOME is a tmp dir (SkyPilot writes ~/.sky on import) and
sockets refuse to resolve or connect, so a loader that wanted the network would fail here.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TASK_YAML = REPO / "cloud" / "aws-gpu.sky.yaml"
SECRETS = [("WANDB_API_KEY", "test-key")]  # what `--env WANDB_API_KEY=...` passes


def _no_network(*args, **kwargs):
    raise OSError("network access is blocked in test_skypilot_task")


@pytest.fixture
def sky(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SKYPILOT_DISABLE_USAGE_COLLECTION", "1")
    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.chdir(REPO)  # workdir "." is relative to where `sky launch` runs
    return pytest.importorskip("sky")


def load(path: Path, env=SECRETS):
    """The task as `sky launch PATH --env K=V` builds it (a one-task chain DAG)."""
    from sky.utils import dag_utils

    dag = dag_utils.load_chain_dag_from_yaml(str(path), env_overrides=list(env))
    assert len(dag.tasks) == 1
    return dag.tasks[0]


def test_task_parses_without_deprecations(sky, capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = load(TASK_YAML)
    assert task.name == "tunelab-paper"
    noisy = [w for w in caught if issubclass(w.category, DeprecationWarning | FutureWarning)]
    assert not noisy, [str(w.message) for w in noisy]
    assert "deprecat" not in "".join(capfd.readouterr()).lower()


def test_resources_one_spot_gpu_on_aws(sky):
    (res,) = load(TASK_YAML).resources
    assert res.cloud is not None and res.cloud.is_same_cloud(sky.clouds.AWS())
    assert len(res.accelerators) == 1 and sum(res.accelerators.values()) == 1, res.accelerators
    assert res.use_spot
    assert res.disk_size >= 100


def test_envs_setup_and_run(sky):
    task = load(TASK_YAML)
    assert task.workdir == "." and (REPO / task.workdir / "dvc.yaml").is_file()
    envs = task.envs
    assert envs["WANDB_MODE"] == "online"
    assert envs["WANDB_API_KEY"] == "test-key"
    assert (REPO / "conf" / "experiment" / f"{envs['EXPERIMENT']}.yaml").is_file()
    assert "music_transformer" in envs["EXPERIMENT"]

    assert "-c requirements.lock" in task.setup and "'.[cloud]'" in task.setup
    assert "fluidsynth" in task.setup and "python3.11" in task.setup
    for cmd in ("dvc pull", "dvc exp run experiment", "dvc push", "dvc exp push origin"):
        assert cmd in task.run, cmd
    assert task.run.index("dvc pull") < task.run.index("dvc exp run") < task.run.index("dvc push")
    assert '"experiment=$EXPERIMENT"' in task.run and "-S trainer=gpu" in task.run
    assert "paths.checkpoints=/checkpoints/" in task.run
    if shutil.which("bash"):
        for script in (task.setup, task.run):
            assert script.startswith("set -euo pipefail")
            subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_checkpoint_bucket_is_mounted(sky):
    from sky.data.storage import StorageMode

    task = load(TASK_YAML, env=[*SECRETS, ("CHECKPOINT_BUCKET", "my-ckpts")])
    storage = task.storage_mounts["/checkpoints"]
    assert storage.name == "my-ckpts"  # ${CHECKPOINT_BUCKET} filled in from --env
    assert storage.mode == StorageMode.MOUNT
    assert storage.persistent  # outlives the (preempted) cluster


def test_missing_secret_is_refused(sky):
    with pytest.raises(ValueError, match="WANDB_API_KEY"):
        sky.Task.from_yaml(str(TASK_YAML))


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("\nresources:\n", "\nresorces:\n", "resorces"),
        ("accelerators: A10G:1", "accelerators: A10G:one", "accelerators"),
        ("use_spot: true", "use_spot: sometimes", "use_spot"),
        ("    mode: MOUNT\n", "    mode: MOUNTED\n", "MOUNTED"),
    ],
)
def test_loader_rejects_a_broken_copy(sky, tmp_path, old, new, error):
    text = TASK_YAML.read_text()
    assert text.count(old) == 1, old
    broken = tmp_path / "broken.sky.yaml"
    broken.write_text(text.replace(old, new))
    with pytest.raises(ValueError, match=error):
        load(broken)
