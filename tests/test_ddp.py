"""trainer=ddp on CPU (gloo): two torchrun processes reach the weights of one process with
the same global batch, and only rank 0 writes the model folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_overrides

RUN = "melody_rnn_basic-children"


def write_split(folder: Path, split: str, rng: np.random.Generator, n: int, length: int) -> None:
    """Equal-length label sequences: no random crops and no padding, so both runs average
    the loss over the same tokens and only the data-parallel split differs."""
    seqs = rng.integers(0, 38, size=(n, length))
    np.savez_compressed(folder / f"{split}.npz", tokens=seqs.reshape(-1).astype(np.int16),
                        offsets=np.arange(0, n * length + 1, length, dtype=np.int64),
                        ids=np.array([f"{split}{i}" for i in range(n)]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ddp")
    folder = tmp / "data/processed/children/melody_onehot"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 32), ("valid", 8), ("test", 8)):
        write_split(folder, split, rng, n, 33)
    return tmp


def train(tmp: Path, name: str, processes: int, batch: int) -> dict:
    args = [*tiny_overrides(tmp), f"paths.models={tmp}/{name}", f"paths.checkpoints={tmp}/{name}-ckpt",
            "corpus=children", "trainer=ddp", "trainer.accelerator=cpu", f"trainer.devices={processes}",
            "trainer.precision=32-true", "trainer.max_steps=6", "trainer.val_check_interval=3",
            f"model.batch_size={batch}", "model.net.dropout=0"]
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
              if processes > 1 else [sys.executable])
    done = subprocess.run([*launch, "-m", "tunelab.cli", "train", *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gloo" in done.stderr or processes == 1
    folders = sorted(p.name for p in (tmp / name).iterdir())
    assert folders == [RUN], folders  # rank 1 wrote nothing, no temp folders left behind
    return torch.load(tmp / name / RUN / "model.ckpt", weights_only=False)["state_dict"]


def test_two_gloo_processes_match_one_with_the_same_global_batch(corpus):
    one = train(corpus, "one", 1, 8)
    two = train(corpus, "two", 2, 4)
    half = train(corpus, "half", 1, 4)  # another global batch: the comparison can tell
    assert one.keys() == two.keys()
    # All-reduce sums the ranks' gradients in another order than one backward pass does:
    # equal to float32 rounding, not bitwise.
    diff = max((one[k] - two[k]).abs().max().item() for k in one)
    assert diff < 1e-5, diff
    assert max((one[k] - half[k]).abs().max().item() for k in one) > 100 * max(diff, 1e-7)
