"""GPU training throughput of the real configs through Lightning: bf16-mixed vs fp32, per model family.

* **train**: for each family, ``load_config(["model=<family>", "corpus=bach", "trainer=gpu",
  "logger=csv"])`` is composed (MuseNet trains jointly on ``styles``), ``tunelab.pipeline.train.setup``
  builds the module and the data module from ``data/processed`` exactly as the train stage
  does, and a Lightning ``Trainer`` fits it for W untimed warm-up steps then S timed steps,
  once per precision (``bf16-mixed``, the gpu trainer's, and ``32-true``, the baseline, in the
  same run). The Trainer mirrors ``tunelab.pipeline.train.make_trainer`` (gradient clipping at
  ``model.clip_norm``, ``deterministic=True``, validation counted in steps) with no logger, no
  checkpoints, no progress bar and no validation. A callback synchronizes the GPU and reads
  the clock when ``global_step`` reaches W and W + S, so the timed steps include Lightning's
  loop, the single-process data loading and the metric logging of the real stage. Reported:
  steps/s, samples/s (samples in the timed batches), tokens/s (positions of the timed
  batches' labels, padding included; ``real%`` = share that is not padding), peak GPU memory
  (``torch.cuda.max_memory_allocated``, reset before each run), the host time between steps
  (data loading and loop bookkeeping; a high share means the step waits on the CPU), and
  bf16/fp32 = bf16 steps/s over fp32 steps/s. Batch size and window are the model's CPU-sized
  defaults, times ``--batch-scale K`` for the batch (at K=1 a GPU step is mostly launch overhead).
  A failing run is recorded with its one-line error and the next one goes on; a run that fails
  only because an op has no deterministic CUDA kernel is repeated with ``deterministic=False``
  (marked, and the error kept). ``--budget-s`` starts no run after that many seconds. The JSON
  is rewritten after every family (``"partial": true`` until the end).
* **end-to-end** (``--end-to-end``, run first): ``tunelab.cli.main(["train", "model=melody_rnn_basic",
  "corpus=bach", "trainer=gpu", "logger=csv", "trainer.max_steps=N", ...])`` into a temporary
  folder, which must write ``model.ckpt`` after N steps: the real stage with the gpu trainer
  (bf16-mixed), validation included.

Usage: ``PYTHONPATH=src python benchmarks/bench_gpu.py [--families ...] [--steps S] [--warmup W]
[--batch-scale K] [--precisions ...] [--end-to-end] [--budget-s T] [--device cuda|cpu] [--out F.json]``
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from common import finish, machine_info, set_threads, sync

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import lightning as L  # noqa: E402

from tunelab.config import load_config  # noqa: E402
from tunelab.models.lm_module import IGNORE  # noqa: E402
from tunelab.pipeline.train import make_trainer, setup  # noqa: E402

FAMILIES = ("melody_rnn_basic", "melody_rnn_attention", "music_transformer", "musenet",
            "music_vae_mel_2bar", "music_vae_mel_16bar_hier")
# Jukebox reads rendered audio (data/audio) and, for the priors, the trained VQ-VAE: ask for them by name
JUKEBOX = ("jukebox_vqvae", "jukebox_prior", "jukebox_upsampler")
PRECISIONS = ("bf16-mixed", "32-true")
E2E_MODEL = "melody_rnn_basic"

warnings.filterwarnings("ignore", ".*does not have many workers.*")


def one_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".strip()


# --- timing callback -------------------------------------------------------------------------


class StepTimer(L.Callback):
    """Wall time of optimizer steps W+1 .. W+S, with the GPU synchronized at both ends, and the
    samples, label positions and host time between steps of those batches."""

    def __init__(self, warmup: int, steps: int, device: torch.device) -> None:
        self.warmup, self.steps, self.device = warmup, steps, device
        self.t0: float | None = None
        self.t1: float | None = None
        self.samples = self.positions = 0
        self.real: torch.Tensor | None = None  # non-padding labels, summed on the device (no sync)
        self.last_end: float | None = None
        self.host_gap = 0.0

    def _timing(self, step: int) -> bool:
        return self.t0 is not None and self.t1 is None and step <= self.warmup + self.steps

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.last_end is not None and self._timing(trainer.global_step + 1):
            self.host_gap += time.perf_counter() - self.last_end

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if self._timing(step):
            labels = batch["labels"] if "labels" in batch else batch["audio"]  # VQ-VAE: samples
            self.samples += labels.shape[0]
            self.positions += labels.shape[0] * labels.shape[1]
            real = (labels != IGNORE).sum() / (labels[0, 0].numel())  # per position (VAE: parts)
            self.real = real if self.real is None else self.real + real
        if step == self.warmup and self.t0 is None:
            sync(self.device)
            self.t0 = time.perf_counter()
        elif step == self.warmup + self.steps and self.t0 is not None and self.t1 is None:
            sync(self.device)
            self.t1 = time.perf_counter()
        self.last_end = time.perf_counter()


# --- one run ---------------------------------------------------------------------------------


def family_config(family: str, args: argparse.Namespace, trainer: str) -> Any:
    cfg = load_config([f"model={family}", "corpus=bach", f"trainer={trainer}", "logger=csv",
                       f"paths.data={ROOT / 'data'}", f"trainer.max_steps={args.warmup + args.steps}",
                       *args.set])
    cfg.model.batch_size = int(cfg.model.batch_size) * args.batch_scale
    return cfg


def make_bench_trainer(cfg: Any, precision: str, device: torch.device, max_steps: int, root: str,
                       callbacks: list[L.Callback], deterministic: bool = True) -> L.Trainer:
    """``tunelab.pipeline.train.make_trainer``'s Trainer on a single device, without logger, progress
    bar or validation."""
    return make_trainer(cfg, False, callbacks, accelerator="gpu" if device.type == "cuda" else "cpu",
                        devices=1, num_nodes=1, strategy="auto", precision=precision, max_steps=max_steps,
                        limit_val_batches=0, enable_progress_bar=False, default_root_dir=root,
                        deterministic=deterministic)


def run_once(cfg: Any, precision: str, args: argparse.Namespace, device: torch.device,
             deterministic: bool = True) -> dict[str, Any]:
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    module, data, _ = setup(cfg)
    timer = StepTimer(args.warmup, args.steps, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as root:
        trainer = make_bench_trainer(cfg, precision, device, args.warmup + args.steps, root, [timer],
                                     deterministic)
        start = time.perf_counter()
        trainer.fit(module, datamodule=data)
        total = time.perf_counter() - start
    if timer.t0 is None or timer.t1 is None:
        raise RuntimeError(f"training stopped at step {trainer.global_step} before step "
                           f"{args.warmup + args.steps}")
    seconds = timer.t1 - timer.t0
    out: dict[str, Any] = {
        "seconds": seconds, "fit_seconds": total, "steps_per_s": args.steps / seconds,
        "ms_per_step": 1000 * seconds / args.steps, "samples_per_s": timer.samples / seconds,
        "tokens_per_s": timer.positions / seconds, "samples": timer.samples, "positions": timer.positions,
        "real_token_share": float(timer.real) / timer.positions if timer.real is not None else None,
        "host_gap_share": timer.host_gap / seconds, "global_step": int(trainer.global_step),
        "params": sum(p.numel() for p in module.parameters()), "deterministic": deterministic,
        "peak_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "loss": float(trainer.callback_metrics["train/loss"]) if "train/loss" in trainer.callback_metrics
        else None}
    del trainer, module, data
    return out


def run_measured(cfg: Any, precision: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """``run_once`` as the train stage runs (``deterministic=True``); if an op has no
    deterministic CUDA kernel, the error is kept and the run repeated without the flag."""
    try:
        return run_once(cfg, precision, args, device)
    except RuntimeError as e:
        if "determinis" not in str(e):
            raise
        traceback.print_exc()
        print(f"  deterministic=True failed ({one_line(e)}); again with deterministic=False", flush=True)
        r = run_once(cfg, precision, args, device, deterministic=False)
        r["deterministic_error"] = one_line(e)
        return r


def run_family(family: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    rec: dict[str, Any] = {"runs": {}}
    try:
        cfg = family_config(family, args, "gpu" if device.type == "cuda" else "cpu")
    except Exception as e:  # noqa: BLE001 - one family's failure must not stop the others
        traceback.print_exc()
        rec["error"] = one_line(e)
        print(f"  {family}: config FAILED: {rec['error']}", flush=True)
        return rec
    rec.update({"batch_size": int(cfg.model.batch_size), "seq_len": int(cfg.model.seq_len),
                "configured_precision": str(cfg.trainer.precision)})
    for precision in args.precisions:
        if time.perf_counter() > args.deadline:
            rec["runs"][precision] = {"skipped": f"--budget-s {args.budget_s:g} spent"}
            print(f"  {family} {precision}: skipped (--budget-s {args.budget_s:g} spent)", flush=True)
            continue
        try:
            r = run_measured(cfg, precision, args, device)
            print(f"  {family} {precision}: {r['steps_per_s']:.2f} steps/s, {r['samples_per_s']:.0f} "
                  f"samples/s, {r['tokens_per_s']:.0f} tokens/s"
                  + (f", peak {r['peak_mem_mib']:.0f} MiB" if r["peak_mem_mib"] is not None else "")
                  + f" (fit {r['fit_seconds']:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - CUDA OOM, a missing op, bad data: record and go on
            traceback.print_exc()
            r = {"error": one_line(e)}
            print(f"  {family} {precision}: FAILED: {r['error']}", flush=True)
        rec["runs"][precision] = r
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    bf16, fp32 = rec["runs"].get("bf16-mixed", {}), rec["runs"].get("32-true", {})
    if "steps_per_s" in bf16 and "steps_per_s" in fp32:
        rec["bf16_over_fp32"] = bf16["steps_per_s"] / fp32["steps_per_s"]
    return rec


# --- end to end ------------------------------------------------------------------------------


def end_to_end(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The real ``tunelab train`` with the gpu trainer into a temporary folder."""
    from tunelab import cli

    trainer = "gpu" if device.type == "cuda" else "cpu"
    rec: dict[str, Any] = {"model": E2E_MODEL, "trainer": trainer, "max_steps": args.e2e_steps}
    with tempfile.TemporaryDirectory(prefix="bench_gpu_e2e_") as tmp:
        overrides = [f"model={E2E_MODEL}", "corpus=bach", f"trainer={trainer}",
                     f"trainer.max_steps={args.e2e_steps}",
                     f"trainer.val_check_interval={max(args.e2e_steps // 2, 1)}", "logger=csv",
                     f"paths.data={ROOT / 'data'}", f"paths.models={tmp}/models",
                     f"paths.checkpoints={tmp}/checkpoints", f"paths.logs={tmp}/logs"]
        rec["argv"] = ["train", "--verbose", *overrides]
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        try:
            rc = cli.main(["train", "--verbose", *overrides])  # --verbose: raise, with the traceback
        except SystemExit as e:  # argparse
            rc = e.code
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            rc, rec["error"] = None, one_line(e)
        rec["seconds"] = time.perf_counter() - start
        rec["rc"] = rc
        out = Path(tmp) / "models" / f"{E2E_MODEL}-bach"
        rec["wrote_model_ckpt"] = (out / "model.ckpt").is_file()
        if rec["wrote_model_ckpt"]:
            rec["model_ckpt_bytes"] = (out / "model.ckpt").stat().st_size
        if (out / "train_metrics.json").is_file():
            rec["metrics"] = json.loads((out / "train_metrics.json").read_text())
        if (out / "config.yaml").is_file():
            text = (out / "config.yaml").read_text()
            rec["saved_precision"] = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                                           if line.strip().startswith("precision:")), None)
        if device.type == "cuda":
            rec["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    steps = (rec.get("metrics") or {}).get("steps")
    rec["ok"] = rc == 0 and rec["wrote_model_ckpt"] and steps == args.e2e_steps and (
        device.type != "cuda" or rec.get("peak_mem_mib", 0) > 0)
    print(f"  end-to-end: rc {rc}, model.ckpt written: {rec['wrote_model_ckpt']}, steps {steps}, "
          f"precision {rec.get('saved_precision')}, {rec['seconds']:.1f} s"
          + (f", peak {rec['peak_mem_mib']:.0f} MiB" if "peak_mem_mib" in rec else ""), flush=True)
    return rec


# --- report ----------------------------------------------------------------------------------


def write_partial(out: Path, result: dict[str, Any]) -> None:
    """The results so far (``"partial": true``), so that a killed run leaves its families."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "partial": True}, indent=2) + "\n")


def format_table(families: dict[str, dict]) -> str:
    lines = [f"{'family':<25} {'precision':<10} {'batch':>5} {'seq':>4} {'steps/s':>8} {'ms/step':>8} "
             f"{'samples/s':>10} {'tokens/s':>10} {'real%':>5} {'host%':>5} {'peak MiB':>8} {'bf16/fp32':>9}"]
    for name, rec in families.items():
        if "error" in rec:
            lines.append(f"{name:<25} FAILED: {rec['error']}")
            continue
        for precision, r in rec["runs"].items():
            ratio = f"{rec['bf16_over_fp32']:.2f}" if "bf16_over_fp32" in rec and precision == "bf16-mixed" \
                else ""
            if "error" in r or "skipped" in r:
                lines.append(f"{name:<25} {precision:<10} "
                             + (f"FAILED: {r['error']}" if "error" in r else f"skipped: {r['skipped']}"))
                continue
            peak = f"{r['peak_mem_mib']:.0f}" if r["peak_mem_mib"] is not None else "-"
            real = f"{100 * r['real_token_share']:.0f}" if r["real_token_share"] is not None else "-"
            lines.append(f"{name:<25} {precision:<10} {rec['batch_size']:>5} {rec['seq_len']:>4} "
                         f"{r['steps_per_s']:>8.2f} {r['ms_per_step']:>8.1f} {r['samples_per_s']:>10.0f} "
                         f"{r['tokens_per_s']:>10.0f} {real:>5} {100 * r['host_gap_share']:>5.0f} "
                         f"{peak:>8} {ratio:>9}" + ("" if r["deterministic"] else "  (deterministic=False)"))
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", nargs="+", choices=FAMILIES + JUKEBOX, default=list(FAMILIES))
    ap.add_argument("--steps", type=int, default=100, help="timed optimizer steps per run")
    ap.add_argument("--set", nargs="+", default=[], metavar="OVERRIDE",
                    help="extra Hydra overrides, e.g. experiment=paper/music_transformer (paper size)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps before the timed ones (>= 1)")
    ap.add_argument("--batch-scale", type=int, default=1,
                    help="multiply each model's configured batch_size by K (default 1: the CPU sizes)")
    ap.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    ap.add_argument("--matmul-precision", choices=("highest", "high", "medium"),
                    help="torch.set_float32_matmul_precision (default: torch's, 'highest': no TF32 matmuls)")
    ap.add_argument("--end-to-end", action="store_true",
                    help=f"also run `tunelab train model={E2E_MODEL} corpus=bach trainer=gpu` (temp dir)")
    ap.add_argument("--e2e-steps", type=int, default=200, help="trainer.max_steps of the end-to-end run")
    ap.add_argument("--budget-s", type=float,
                    help="start no new run after this many seconds (the rest is recorded as skipped)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads(N) (CPU)")
    ap.add_argument("--out", type=Path, default=Path("bench_gpu.json"), help="JSON results")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device (use --device cpu for a smoke test)")
    if args.steps < 1 or args.warmup < 1 or args.batch_scale < 1 or args.e2e_steps < 1:
        ap.error("--steps, --warmup, --batch-scale and --e2e-steps must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    # What Lightning's deterministic=True sets, here before the first cuBLAS handle exists.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_threads(args.threads, device)
    if args.matmul_precision:
        torch.set_float32_matmul_precision(args.matmul_precision)
    machine = machine_info(device)
    import lightning

    machine.update({"lightning": lightning.__version__, "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
                    "float32_matmul_precision": torch.get_float32_matmul_precision()})
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        machine["gpu_memory_gib"] = props.total_memory / 2**30
        machine["bf16_supported"] = torch.cuda.is_bf16_supported()
    print(f"device {device}" + (f" ({machine['gpu']})" if "gpu" in machine else "")
          + f"; torch {torch.__version__}, lightning {lightning.__version__}, CUDA {machine['cuda']}; "
          f"batch scale K={args.batch_scale}; {args.warmup} warm-up + {args.steps} timed steps per run; "
          f"fp32 matmul precision {machine['float32_matmul_precision']}", flush=True)
    result: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "batch_scale": args.batch_scale, "machine": machine, "families": {}}
    start = time.perf_counter()
    args.deadline = start + args.budget_s if args.budget_s else math.inf
    if args.end_to_end:  # first: short, and the proof that the real stage runs
        print("end-to-end:", flush=True)
        result["end_to_end"] = end_to_end(args, device)
    for family in args.families:
        print(f"{family}:", flush=True)
        result["families"][family] = run_family(family, args, device)
        write_partial(args.out, result)
    result["seconds_total"] = time.perf_counter() - start

    print()
    print(f"training throughput through Lightning on {machine.get('gpu', device)}: {args.steps} timed steps "
          f"after {args.warmup} warm-up steps, batch = configured batch_size x K={args.batch_scale}; "
          "tokens = label positions (padding included, real% without it); host% = time between steps "
          "(data loading, loop); bf16/fp32 = ratio of steps/s in this run")
    print(format_table(result["families"]))
    failed = [f"{name} {prec}" if prec else name for name, rec in result["families"].items()
              for prec in ([None] if "error" in rec else [p for p, r in rec["runs"].items() if "error" in r])]
    if args.end_to_end and not result["end_to_end"]["ok"]:
        failed.append("end-to-end")
    skipped = [f"{name} {p}" for name, rec in result["families"].items() for p, r in rec["runs"].items()
               if "skipped" in r]
    if skipped:
        print(f"skipped (--budget-s): {', '.join(skipped)}")
    print(f"total {result['seconds_total']:.0f} s")
    return finish(result, failed, "runs failed", args.out)


if __name__ == "__main__":
    raise SystemExit(0 if main()["ok"] else 1)
