"""Data-parallel training on CPU: samples/s of `tunelab train trainer=ddp` with 2 gloo
processes (torchrun) against 1 process, measured side by side in one run.

Each process trains on the model's own batch size (weak scaling: 2 processes train twice the
samples per step). Start-up (imports, process group, data) is cancelled out by timing every
configuration at two step counts and dividing the extra samples by the extra seconds:
``samples/s = (S2 - S1) * batch * processes / (t(S2) - t(S1))``. The real tokenized corpus
must exist (``dvc repro tokenize@bach-melody_onehot`` or the full pipeline).

Usage: ``.venv/bin/python benchmarks/bench_ddp.py [--models M ...] [--corpus C] [--steps S1 S2]
[--out F.json]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from common import finish, machine_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from tunelab.config import load_config  # noqa: E402


def run_train(model: str, corpus: str, processes: int, steps: int, tmp: Path) -> float:
    """Wall seconds of one `tunelab train` (torchrun for more than one process)."""
    args = [f"model={model}", f"corpus={corpus}", "trainer=ddp", "trainer.accelerator=cpu",
            f"trainer.devices={processes}", "trainer.precision=32-true", f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={steps + 1}", "logger=csv", f"paths.models={tmp}/m{processes}",
            f"paths.checkpoints={tmp}/c{processes}", "resume=false"]
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
              if processes > 1 else [sys.executable])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    done = subprocess.run([*launch, "-m", "tunelab.cli", "train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return seconds


def bench_model(model: str, corpus: str, steps: tuple[int, int]) -> dict[str, Any]:
    batch = load_config([f"model={model}", f"corpus={corpus}"]).model.batch_size
    out: dict[str, Any] = {"batch_per_process": batch}
    with tempfile.TemporaryDirectory() as tmp:
        for processes in (1, 2):
            t1 = run_train(model, corpus, processes, steps[0], Path(tmp))
            t2 = run_train(model, corpus, processes, steps[1], Path(tmp))
            rate = (steps[1] - steps[0]) * batch * processes / (t2 - t1)
            out[f"{processes}proc"] = {"seconds": [t1, t2], "samples_per_s": rate}
            print(f"  {model}: {processes} process(es) {rate:.0f} samples/s", flush=True)
    out["ratio_2_vs_1"] = out["2proc"]["samples_per_s"] / out["1proc"]["samples_per_s"]
    print(f"  {model}: 2 processes / 1 = {out['ratio_2_vs_1']:.2f}x", flush=True)
    return out


def main(argv: Any = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["melody_rnn_basic", "music_transformer"])
    ap.add_argument("--corpus", default="bach")
    ap.add_argument("--steps", nargs=2, type=int, default=[10, 60], metavar=("S1", "S2"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"machine": machine_info(torch.device("cpu")),
                              "args": {k: str(v) for k, v in vars(args).items()}}
    failed = []
    for model in args.models:
        try:
            result[model] = bench_model(model, args.corpus, tuple(args.steps))
        except RuntimeError as e:
            result[model] = {"error": str(e)}
            failed.append(model)
    return finish(result, failed, "ddp", args.out)


if __name__ == "__main__":
    main()
