"""MelodyRNN speed: training throughput per variant, and sampling with kept state vs re-running the prefix.

* **train**: optimizer steps/s of each variant at its CPU default config
  (``load_config(["model=<variant>"])``: batch_size, seq_len, clip_norm, Adam settings) on one
  fixed synthetic batch: random melodies of valid events in 48..83 (built once, shared by all
  variants), encoded with the variant's encoding and turned into features by
  ``EventSequenceDataset`` + ``pad_collate``. A step is forward, cross-entropy (padding
  ignored), backward, ``clip_grad_norm_`` and ``Adam.step`` -- what Lightning runs per
  step, without its loop and metric logging. Each timed block starts with untimed warm-up steps.
* **sample**: events/s of generating N events after a 1-event primer, batch 1, untrained
  weights (fixed seed), ``sample.temperature`` of the default config.
  ``kept`` is ``MelodyGenerator.generate`` (state kept, one input row per step);
  ``recompute`` overrides ``MelodyGenerator.step`` to run the network over the whole prefix
  from a fresh state every step (same sampling rule). Before timing, both run once with
  ``greedy=True`` and must produce the same events (a correctness guard: exit status 1 if not).

Variants, and kept/recompute within a variant, run in turn within each repeat, the order
reversed every other repeat (the machine is shared and noisy); medians over repeats are
reported, with ratios against ``melody_rnn_basic`` (train) and kept / recompute (sample)
measured in the same run. See README.md.

Usage: ``.venv/bin/python benchmarks/bench_melody_rnn.py [--repeat R] [--train-steps S]
[--sample-steps N] [--device cpu|cuda] [--variants ...] [--out F.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig

from common import finish, machine_info, parse_checked, sync, time_steps
from tunelab.config import load_config
from tunelab.datamodule import EventSequenceDataset, pad_collate
from tunelab.encodings.registry import MELODY_RANGE, build_encoding
from tunelab.families.melody_rnn.generate import Hypothesis, MelodyGenerator
from tunelab.models.lm_module import IGNORE
from tunelab.music.constants import MELODY_NO_EVENT, MELODY_NOTE_OFF
from tunelab.pipeline.train import build_module

VARIANTS = ("melody_rnn_basic", "melody_rnn_mono", "melody_rnn_lookback", "melody_rnn_attention")
BASELINE = "melody_rnn_basic"
MODES = ("kept", "recompute")
PRIMER = (60,)
PITCHES = MELODY_RANGE["melody_onehot"]  # 48..83: inside every melody encoding's range


@dataclass
class Variant:
    name: str
    cfg: DictConfig
    encoding: Any


def load_variant(name: str) -> Variant:
    cfg = load_config([f"model={name}"])
    return Variant(name, cfg, build_encoding(cfg.model.encoding))


# --- training --------------------------------------------------------------------------------


def random_melodies(n: int, length: int, seed: int) -> list[np.ndarray]:
    """``n`` melodies of ``length`` events: a pitch first, then ~50% NO_EVENT, 10% NOTE_OFF,
    40% note-ons in 48..83."""
    rng = np.random.default_rng(seed)
    lo, hi = PITCHES
    out = []
    for _ in range(n):
        kind = rng.choice(3, size=length, p=[0.5, 0.1, 0.4])
        ev = np.where(kind == 0, MELODY_NO_EVENT,
                      np.where(kind == 1, MELODY_NOTE_OFF, rng.integers(lo, hi, size=length)))
        ev[0] = rng.integers(lo, hi)
        out.append(ev.astype(np.int64))
    return out


def make_batch(encoding: Any, melodies: list[np.ndarray], seq_len: int) -> dict[str, torch.Tensor]:
    """The variant's training batch, built as the data module builds it."""
    labels = [np.asarray(encoding.encode(m), dtype=np.int64) for m in melodies]
    ds = EventSequenceDataset(labels, encoding, window=seq_len)
    return pad_collate([ds[i] for i in range(len(ds))])


class TrainBench:
    """One variant's module, Adam and fixed batch on ``device``."""

    def __init__(self, v: Variant, melodies: list[np.ndarray], device: torch.device, seed: int) -> None:
        torch.manual_seed(seed)
        self.module = build_module(v.cfg, v.encoding).to(device).train()
        self.opt = self.module.configure_optimizers()
        self.clip = float(v.cfg.model.clip_norm)
        batch = make_batch(v.encoding, melodies, v.cfg.model.seq_len)
        self.inputs, self.labels = batch["inputs"].to(device), batch["labels"].to(device)
        self.device = device
        self.params = sum(p.numel() for p in self.module.parameters())

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        logits = self.module(self.inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), self.labels.flatten(), ignore_index=IGNORE)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
        self.opt.step()

    def timed(self, steps: int, warmup: int) -> float:
        """Seconds for ``steps`` steps after ``warmup`` untimed ones."""
        return time_steps(self.step, steps, warmup, self.device)


# --- sampling --------------------------------------------------------------------------------


class DeviceGenerator(MelodyGenerator):
    """``MelodyGenerator`` with its input rows moved to ``device`` (a no-op on the CPU)."""

    def __init__(self, net: torch.nn.Module, encoding: Any, device: torch.device, **kw: Any) -> None:
        super().__init__(net, encoding, **kw)
        self.device = device

    def _features(self, events: tuple[int, ...], last_only: bool) -> torch.Tensor:
        return super()._features(events, last_only).to(self.device)


class RecomputeGenerator(DeviceGenerator):
    """Reference: every step re-runs the network over the whole prefix from a fresh state."""

    @torch.no_grad()
    def step(self, h: Hypothesis) -> Hypothesis:
        log_probs = torch.log_softmax(h.logits / self.temperature, -1)  # same rule as the parent
        if self.greedy:
            label = int(log_probs.argmax())
        else:
            label = int(torch.multinomial(log_probs.exp(), 1, generator=self.generator))
        labels = (*h.labels, label)
        events = tuple(self.encoding.decode(labels))
        logits, _ = self.net(self._features(events, last_only=False))
        return Hypothesis(labels, events, None, logits[0, -1], h.score + float(log_probs[label]))


class TimedNet:
    """Wraps a network to add up the seconds spent in its forward calls."""

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        self.net, self.device, self.seconds = net, device, 0.0

    def __call__(self, *args: Any) -> Any:
        sync(self.device)
        t0 = time.perf_counter()
        out = self.net(*args)
        sync(self.device)
        self.seconds += time.perf_counter() - t0
        return out


@dataclass
class SampleRun:
    seconds: float
    net_seconds: float
    events: tuple[int, ...]
    score: float  # summed log-probability of the generated events


def sample_once(v: Variant, net: torch.nn.Module, mode: str, steps: int, greedy: bool, seed: int,
                device: torch.device) -> SampleRun:
    """Generate ``steps`` events after ``PRIMER`` with the ``kept`` or ``recompute`` generator."""
    cls = DeviceGenerator if mode == "kept" else RecomputeGenerator
    gen = cls(net, v.encoding, device, temperature=float(v.cfg.sample.temperature), greedy=greedy,
              generator=torch.Generator(device=device).manual_seed(seed))
    timer = TimedNet(net, device)
    gen.net = timer  # type: ignore[assignment]
    sync(device)
    t0 = time.perf_counter()
    best = gen.generate(PRIMER, len(PRIMER) + steps)
    sync(device)
    seconds = time.perf_counter() - t0
    assert len(best.events) == len(PRIMER) + steps, (v.name, mode, len(best.events))
    return SampleRun(seconds, timer.seconds, best.events, best.score)


@contextlib.contextmanager
def strict_fp32(device: torch.device) -> Iterator[None]:
    """No TF32 in cuDNN/cuBLAS (cuDNN's LSTM uses it by default), so the greedy guard compares
    fp32 with fp32; a no-op on the CPU."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None)


# --- report ----------------------------------------------------------------------------------


def summarize_train(benches: dict[str, TrainBench], runs: dict[str, list[float]],
                    variants: dict[str, Variant], steps: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, secs in runs.items():
        m = variants[name].cfg.model
        rate = steps / statistics.median(secs)
        out[name] = {"batch_size": int(m.batch_size), "seq_len": int(m.seq_len),
                     "params": benches[name].params, "steps_per_s": rate,
                     "tokens_per_s": rate * m.batch_size * m.seq_len,
                     "repeat_steps_per_s": [steps / s for s in secs]}
    if BASELINE in out:
        for s in out.values():
            s["ratio_to_basic"] = s["steps_per_s"] / out[BASELINE]["steps_per_s"]
    return out


def summarize_sample(runs: dict[str, dict[str, list[SampleRun]]], checks: dict[str, dict],
                     steps: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, by_mode in runs.items():
        s: dict[str, Any] = {}
        for mode, rs in by_mode.items():
            s[f"{mode}_steps_per_s"] = steps / statistics.median(r.seconds for r in rs)
            s[f"{mode}_net_share"] = statistics.median(r.net_seconds / r.seconds for r in rs)
            s[f"{mode}_repeat_s"] = [r.seconds for r in rs]
        s["speedup_kept_over_recompute"] = s["kept_steps_per_s"] / s["recompute_steps_per_s"]
        s["sampled_same"] = by_mode["kept"][0].events == by_mode["recompute"][0].events
        s["sampled_score"] = [by_mode[m][0].score for m in MODES]
        s.update(checks[name])
        out[name] = s
    return out


def format_train(summary: dict[str, dict]) -> str:
    lines = [f"{'variant':<22} {'batch':>5} {'seq':>4} {'params':>8} {'steps/s':>8} {'ms/step':>8} "
             f"{'tokens/s':>9} {'x basic':>8}"]
    for name, s in summary.items():
        ratio = f"{s['ratio_to_basic']:.2f}" if "ratio_to_basic" in s else "-"
        lines.append(f"{name:<22} {s['batch_size']:>5} {s['seq_len']:>4} {s['params']:>8} "
                     f"{s['steps_per_s']:>8.2f} {1000 / s['steps_per_s']:>8.1f} "
                     f"{s['tokens_per_s']:>9.0f} {ratio:>8}")
    return "\n".join(lines)


def format_sample(summary: dict[str, dict]) -> str:
    lines = [f"{'variant':<22} {'kept/s':>8} {'recomp/s':>9} {'kept/recomp':>11} {'net% kept':>9} "
             f"{'net% recomp':>11} {'greedy same':>11} {'sampled same':>12}"]
    for name, s in summary.items():
        lines.append(f"{name:<22} {s['kept_steps_per_s']:>8.1f} {s['recompute_steps_per_s']:>9.1f} "
                     f"{s['speedup_kept_over_recompute']:>11.2f} {100 * s['kept_net_share']:>9.0f} "
                     f"{100 * s['recompute_net_share']:>11.0f} {str(s['greedy_same']):>11} "
                     f"{str(s['sampled_same']):>12}")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per variant (median reported)")
    ap.add_argument("--train-steps", type=int, default=20, help="timed optimizer steps per repeat (0: skip)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before each timed training block")
    ap.add_argument("--sample-steps", type=int, default=256, help="events generated per run (0: skip)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int,
                    help="torch.set_num_threads(N) (default: torch's own choice, one per core)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parse_checked(ap, argv)
    return args


def interleaved(items: Sequence[str], r: int) -> list[str]:
    return list(items) if r % 2 == 0 else list(reversed(items))


def run_train(args: argparse.Namespace, variants: dict[str, Variant], device: torch.device) -> dict:
    longest = max(v.cfg.model.seq_len for v in variants.values())
    biggest = max(v.cfg.model.batch_size for v in variants.values())
    melodies = random_melodies(biggest, longest + 1, args.seed)
    benches = {}
    for name, v in variants.items():
        m = v.cfg.model
        benches[name] = TrainBench(v, [x[: m.seq_len + 1] for x in melodies[: m.batch_size]], device,
                                   args.seed)
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.repeat):
        for name in interleaved(list(variants), r):
            runs[name].append(benches[name].timed(args.train_steps, args.warmup))
            print(f"  train repeat {r + 1}/{args.repeat} {name}: "
                  f"{args.train_steps / runs[name][-1]:.2f} steps/s", flush=True)
    return summarize_train(benches, runs, variants, args.train_steps)


def run_sample(args: argparse.Namespace, variants: dict[str, Variant], device: torch.device) -> dict:
    nets, checks = {}, {}
    for name, v in variants.items():
        torch.manual_seed(args.seed)
        nets[name] = instantiate(v.cfg.model.net).to(device).eval()
        # Greedy guard, doubling as the untimed warm-up.
        with strict_fp32(device):
            kept, recomputed = (sample_once(v, nets[name], mode, args.sample_steps, True, args.seed, device)
                                for mode in MODES)
        # Untrained greedy output soon repeats one event, so the log-likelihoods are compared too:
        # they would drift apart if the kept state went wrong.
        diff = first_difference(kept.events, recomputed.events)
        same = diff is None and math.isclose(kept.score, recomputed.score, rel_tol=1e-4, abs_tol=1e-3)
        checks[name] = {"greedy_same": same, "greedy_first_difference": diff,
                        "greedy_score": [kept.score, recomputed.score]}
        print(f"  greedy check {name}: "
              + (f"events differ from event {diff}" if diff is not None else "same events")
              + f", log-likelihood {kept.score:.4f} kept vs {recomputed.score:.4f} recompute", flush=True)
    runs: dict[str, dict[str, list[SampleRun]]] = {name: {m: [] for m in MODES} for name in variants}
    for r in range(args.repeat):
        for name in interleaved(list(variants), r):
            for mode in interleaved(MODES, r):
                runs[name][mode].append(sample_once(variants[name], nets[name], mode, args.sample_steps,
                                                    False, args.seed, device))
            k, c = (runs[name][m][-1].seconds for m in MODES)
            print(f"  sample repeat {r + 1}/{args.repeat} {name}: kept {args.sample_steps / k:.1f}/s, "
                  f"recompute {args.sample_steps / c:.1f}/s", flush=True)
    return summarize_sample(runs, checks, args.sample_steps)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info(device)
    print(f"device {device}" + (f" ({machine['gpu']})" if "gpu" in machine else "")
          + f"; CPU {machine['cpu']}, {machine['usable_cores']} usable cores, torch {torch.__version__} "
          f"with {machine['torch_threads']} threads; load average {machine['loadavg_start'][0]:.2f}",
          flush=True)
    busy = machine["loadavg_start"][0]
    if device.type == "cpu" and busy > 0.5:
        # torch's OpenMP threads spin at barriers: one thread per core on cores other processes
        # use made this machine's steps 50-250x slower (2 cores, a training run beside it).
        threads = torch.get_num_threads()
        print(f"WARNING: load average {busy:.2f} before starting: other processes use the CPU; "
              + (f"torch's {threads} threads contend with them and timings can be off by orders of "
                 "magnitude (compare with --threads 1); " if threads > 1 else "")
              + "measure on an idle machine", flush=True)
    variants = {name: load_variant(name) for name in args.variants}
    result: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "machine": machine}
    if args.train_steps > 0:
        result["train"] = run_train(args, variants, device)
    if args.sample_steps > 0:
        result["sample"] = run_sample(args, variants, device)
    machine["loadavg_end"] = list(os.getloadavg())

    print()
    if "train" in result:
        print(f"training: optimizer steps/s on a fixed batch, median of {args.repeat} repeats x "
              f"{args.train_steps} steps ({args.warmup} warm-up steps before each); x basic = ratio to "
              f"{BASELINE} in this run")
        print(format_train(result["train"]))
        print()
    if "sample" in result:
        print(f"sampling: events/s, {args.sample_steps} events after a {len(PRIMER)}-event primer, batch 1, "
              f"untrained weights, median of {args.repeat} repeats; net% = share of the time in the "
              f"network's forward (the rest: features, decode, sampling)")
        print(format_sample(result["sample"]))
    bad = [n for n, s in result.get("sample", {}).items() if not s["greedy_same"]]
    return finish(result, bad, "greedy kept-state and recompute sampling differ", args.out)


if __name__ == "__main__":
    raise SystemExit(0 if main()["ok"] else 1)
