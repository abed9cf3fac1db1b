"""Music Transformer: relative-attention memory (skewing vs naive), sampling with the key/value
cache vs full recompute, and training throughput of relative vs vanilla (absolute) attention.

* **memory**: peak bytes of the tensors created while computing one layer's relative logits
  (batch 1, ``--heads`` heads of dimension ``--head-dim``, float32, ``torch.no_grad()``), for
  ``relative_logits_causal`` (Music Transformer's skewing) and ``relative_logits_naive``
  (Shaw et al.: materializes the L x L x D per-pair embeddings) at each of ``--lengths``, with
  an embedding table of M = L rows. Measured, not computed: :class:`LiveTensorTracker` (a
  ``TorchDispatchMode``) adds up the storages of every op's outputs while they are alive and keeps
  the peak; the inputs ``q`` and ``emb`` are excluded. On CUDA ``torch.cuda.max_memory_allocated``
  is reported too. A naive run that would not fit in the available memory is skipped (Linux
  overcommits, so an allocation too big is killed rather than raising), a failed one recorded as OOM.
* **sample**: tokens/s generating N tokens from a BOS prompt, batch 1, untrained weights (fixed
  seed), temperature 1, with ``sampling.generate``: ``cache`` feeds one token per step and keeps
  keys/values, ``recompute`` runs the whole prefix every step. Both use the same generator seed
  and must draw the same tokens (exit status 1 if not). Relative and absolute (vanilla) models.
* **train**: tokens/s of forward, cross-entropy, backward and ``AdamW.step`` on a fixed random
  token batch, relative vs absolute at the same size, after warm-up steps. On CUDA: bf16 autocast
  (the vanilla path then runs PyTorch's fused ``scaled_dot_product_attention`` kernels).

Sizes: CPU = the project's default (``conf/model/music_transformer.yaml``: 388 classes,
d_model 128, 3 layers, 4 heads, d_ff 512, max_relative_position 256; batch 16 x 256); CUDA =
d_model 512, 6 layers, 8 heads, d_ff 2048, batch 16 x 1024 for training. Ratios are measured in
the same run; relative/absolute run in turn, the order reversed every other repeat. See README.md.

Usage: ``.venv/bin/python benchmarks/bench_music_transformer.py [--device cpu|cuda] [--lengths ...]
[--heads H] [--sample-tokens N] [--recompute-tokens K] [--train-steps S] [--repeat R] [--out F.json]``
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from common import cache_vs_recompute, finish, machine_info, parse_checked, set_threads, sync, time_steps
from tunelab.models.components.attention import relative_logits_causal, relative_logits_naive
from tunelab.models.components.sampling import generate
from tunelab.models.components.transformer import TransformerLM
from tunelab.profiling import LiveTensorTracker, tracker_self_check

NUM_CLASSES = 388  # performance encoding
POSITIONS = ("relative", "absolute")
MB = 1e6
PAPER_NOTE = ("paper (Huang et al. 2019, sec. 3.4.1), L=2048, D=512 per layer: naive 8.5 GB "
              "(L*L*D floats) -> 4.2 MB with skewing (E_r: L*D floats; the L*L logits not counted)")


@dataclass(frozen=True)
class Size:
    d_model: int
    num_layers: int
    num_heads: int
    d_ff: int
    max_relative_position: int
    batch: int
    seq_len: int


CPU_SIZE = Size(d_model=128, num_layers=3, num_heads=4, d_ff=512, max_relative_position=256, batch=16,
                seq_len=256)
CUDA_SIZE = Size(d_model=512, num_layers=6, num_heads=8, d_ff=2048, max_relative_position=1024, batch=16,
                 seq_len=1024)


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 1 << 62


def measure_peak(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], q: torch.Tensor,
                 emb: torch.Tensor) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Run ``fn(q, emb)`` under the tracker: peak intermediate bytes (the output included)."""
    device = q.device
    gc.collect()
    rec: dict[str, Any] = {"status": "ok"}
    out = None
    if device.type == "cuda":
        sync(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    t0 = time.perf_counter()
    try:
        # `with device`: any factory call inside lands on q's device.
        with torch.no_grad(), device, LiveTensorTracker(exclude=(q, emb)) as tr:
            out = fn(q, emb)
            sync(device)
    except (RuntimeError, MemoryError) as e:
        rec = {"status": "OOM", "error": str(e).splitlines()[0][:200]}
    rec["seconds"] = time.perf_counter() - t0
    rec["peak_bytes"] = tr.peak
    if device.type == "cuda":
        rec["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
    gc.collect()
    return rec, out


def run_memory(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    H, D = args.heads, args.head_dim
    rows = []
    for L in args.lengths:
        g = torch.Generator().manual_seed(args.seed + L)
        q = torch.randn(1, H, L, D, generator=g).to(device)
        emb = torch.randn(H, L, D, generator=g).to(device)
        row: dict[str, Any] = {"L": L, "heads": H, "head_dim": D,
                               "logits_bytes": H * L * L * 4, "e_r_bytes": H * L * D * 4}
        row["skewed"], skewed = measure_peak(relative_logits_causal, q, emb)
        # R (H, L, L, D) is gathered, then multiplied by the causal mask: two copies alive at once.
        need = 2 * H * L * L * D * 4
        avail = available_bytes(device)
        if need > 0.85 * avail:
            row["naive"] = {"status": "skipped", "need_bytes": need, "available_bytes": avail}
        else:
            row["naive"], naive = measure_peak(relative_logits_naive, q, emb)
            if skewed is not None and naive is not None:
                lower = torch.ones(L, L, dtype=torch.bool, device=device).tril()
                row["max_abs_diff"] = float((skewed[..., lower] - naive[..., lower]).abs().max())
            del naive
        if row["naive"]["status"] == "ok" and row["skewed"]["status"] == "ok":
            row["naive_over_skewed"] = row["naive"]["peak_bytes"] / row["skewed"]["peak_bytes"]
        del skewed, q, emb
        gc.collect()
        print(f"  memory L={L}: skewed {fmt_peak(row['skewed'])}, naive {fmt_peak(row['naive'])}", flush=True)
        rows.append(row)
    return rows


def fmt_peak(rec: dict[str, Any]) -> str:
    if rec["status"] == "ok":
        return f"{rec['peak_bytes'] / MB:.1f} MB"
    if rec["status"] == "skipped":
        return f"skipped ({rec['need_bytes'] / 1e9:.1f} GB > {rec['available_bytes'] / 1e9:.1f} GB free)"
    return rec["status"]


# --- models ------------------------------------------------------------------------------------


def build_model(size: Size, position: str, seed: int, device: torch.device) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM(NUM_CLASSES, d_model=size.d_model, num_layers=size.num_layers,
                         num_heads=size.num_heads, d_ff=size.d_ff, dropout=0.1, position=position,
                         max_relative_position=size.max_relative_position).to(device)


# --- sampling ----------------------------------------------------------------------------------


def sample_once(model: TransformerLM, num_new: int, cached: bool, seed: int,
                device: torch.device) -> tuple[float, torch.Tensor]:
    """Seconds to generate ``num_new`` tokens from BOS, and the tokens."""
    prompt = torch.full((1, 1), model.bos, dtype=torch.long, device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    sync(device)
    t0 = time.perf_counter()
    tokens = generate(lambda t, c: model(t, c), prompt, num_new,
                      new_cache=model.new_cache if cached else None, generator=gen)
    sync(device)
    return time.perf_counter() - t0, tokens[0, 1:].cpu()


def run_sample(args: argparse.Namespace, device: torch.device) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    n, k = args.sample_tokens, min(args.recompute_tokens, args.sample_tokens)
    for position in POSITIONS:
        model = build_model(CPU_SIZE, position, args.seed, device).eval()
        sample_once(model, 8, True, args.seed, device)  # warm-up
        sample_once(model, 8, False, args.seed, device)
        def run(tokens: int, cache: bool, m: TransformerLM = model) -> tuple[float, torch.Tensor]:
            return sample_once(m, tokens, cache, args.seed, device)

        rec = cache_vs_recompute(run, n, k, args.repeat, f"sample {position}")
        out[position] = rec
        del model
        gc.collect()
    return out


# --- training ----------------------------------------------------------------------------------


class TrainBench:
    """One model, its AdamW (the config's settings) and a fixed random batch."""

    def __init__(self, size: Size, position: str, seed: int, device: torch.device) -> None:
        self.model = build_model(size, position, seed, device).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
        g = torch.Generator().manual_seed(seed + 1)
        self.inputs = torch.randint(0, NUM_CLASSES, (size.batch, size.seq_len), generator=g).to(device)
        self.labels = torch.randint(0, NUM_CLASSES, (size.batch, size.seq_len), generator=g).to(device)
        self.device = device
        self.params = sum(p.numel() for p in self.model.parameters())
        self.tokens = size.batch * size.seq_len

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits, _ = self.model(self.inputs)
            loss = F.cross_entropy(logits.float().flatten(0, 1), self.labels.flatten())
        loss.backward()
        self.opt.step()

    def timed(self, steps: int, warmup: int) -> float:
        """Seconds for ``steps`` steps after ``warmup`` untimed ones."""
        return time_steps(self.step, steps, warmup, self.device)


def run_train(args: argparse.Namespace, device: torch.device) -> dict[str, dict[str, Any]]:
    size = CUDA_SIZE if device.type == "cuda" else CPU_SIZE
    benches = {p: TrainBench(size, p, args.seed, device) for p in POSITIONS}
    runs: dict[str, list[float]] = {p: [] for p in POSITIONS}
    peaks: dict[str, int] = {}
    for r in range(args.repeat):
        for p in POSITIONS if r % 2 == 0 else reversed(POSITIONS):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            runs[p].append(benches[p].timed(args.train_steps, args.warmup))
            if device.type == "cuda":
                peaks[p] = max(peaks.get(p, 0), torch.cuda.max_memory_allocated(device))
            print(f"  train repeat {r + 1}/{args.repeat} {p}: "
                  f"{args.train_steps * benches[p].tokens / runs[p][-1]:.0f} tokens/s", flush=True)
    out: dict[str, dict[str, Any]] = {}
    for p, secs in runs.items():
        b = benches[p]
        out[p] = {"batch": size.batch, "seq_len": size.seq_len, "d_model": size.d_model,
                  "num_layers": size.num_layers, "num_heads": size.num_heads, "params": b.params,
                  "tokens_per_s": args.train_steps * b.tokens / statistics.median(secs),
                  "repeat_tokens_per_s": [args.train_steps * b.tokens / s for s in secs]}
        if p in peaks:
            out[p]["cuda_max_memory_allocated"] = peaks[p]
    rel, ab = out["relative"], out["absolute"]
    rel["relative_over_absolute"] = rel["tokens_per_s"] / ab["tokens_per_s"]
    return out


# --- report ------------------------------------------------------------------------------------


def format_memory(rows: list[dict[str, Any]], cuda: bool) -> str:
    def mb(rec: dict[str, Any], key: str = "peak_bytes") -> str:
        return f"{rec[key] / MB:.1f}" if rec["status"] == "ok" else rec["status"]

    head = (f"{'L':>5} {'logits MB':>9} {'E_r MB':>7} {'skewed MB':>10} {'naive MB':>10} "
            f"{'naive/skewed':>12} {'max|diff|':>9}")
    if cuda:
        head += f" {'cuda skewed':>11} {'cuda naive':>10}"
    lines = [head]
    for r in rows:
        ratio = f"{r['naive_over_skewed']:.1f}" if "naive_over_skewed" in r else "-"
        diff = f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "-"
        line = (f"{r['L']:>5} {r['logits_bytes'] / MB:>9.1f} {r['e_r_bytes'] / MB:>7.1f} "
                f"{mb(r['skewed']):>10} {mb(r['naive']):>10} {ratio:>12} {diff:>9}")
        if cuda:
            line += (f" {mb(r['skewed'], 'cuda_peak_bytes'):>11} "
                     f"{mb(r['naive'], 'cuda_peak_bytes') if 'cuda_peak_bytes' in r['naive'] else '-':>10}")
        lines.append(line)
    return "\n".join(lines)


def format_sample(summary: dict[str, dict[str, Any]]) -> str:
    lines = [f"{'position':<9} {'tokens':>6} {'cache/s':>8} {'recomp tokens':>13} {'recomp/s':>8} "
             f"{'cache/recomp':>12} {'same':>5}"]
    nan = float("nan")
    for p, s in summary.items():
        lines.append(f"{p:<9} {s['cache_tokens']:>6} {s['cache_tokens_per_s']:>8.1f} "
                     f"{s.get('recompute_tokens', 0):>13} {s.get('recompute_tokens_per_s', nan):>8.1f} "
                     f"{s.get('cache_over_recompute', nan):>12.1f} {str(s.get('same_tokens', '-')):>5}")
    return "\n".join(lines)


def format_train(summary: dict[str, dict[str, Any]]) -> str:
    cuda = any("cuda_max_memory_allocated" in s for s in summary.values())
    lines = [f"{'position':<9} {'batch':>5} {'seq':>5} {'params':>9} {'tokens/s':>9} {'x absolute':>10}"
             + (f" {'max alloc MB':>12}" if cuda else "")]
    for p, s in summary.items():
        ratio = s["tokens_per_s"] / summary["absolute"]["tokens_per_s"]
        lines.append(f"{p:<9} {s['batch']:>5} {s['seq_len']:>5} {s['params']:>9} {s['tokens_per_s']:>9.0f} "
                     f"{ratio:>10.2f}" + (f" {s['cuda_max_memory_allocated'] / MB:>12.0f}" if cuda else ""))
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--lengths", type=int, nargs="*", default=[512, 1024, 2048],
                    help="sequence lengths of the memory measurement (none: skip)")
    ap.add_argument("--heads", type=int, default=8, help="heads of the memory measurement")
    ap.add_argument("--head-dim", type=int, default=64, help="head dimension of the memory measurement")
    ap.add_argument("--sample-tokens", type=int, default=1024,
                    help="tokens generated with the cache (0: skip)")
    ap.add_argument("--recompute-tokens", type=int, default=1024,
                    help="tokens generated by full recompute (quadratic; 0: skip)")
    ap.add_argument("--train-steps", type=int, default=10, help="timed training steps per repeat (0: skip)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps before each timed block")
    ap.add_argument("--repeat", type=int, default=3, help="repeats of training and cached sampling (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int,
                    help="torch.set_num_threads(N) (default on the CPU: 1 if the load average at start is "
                         "above 0.5, else torch's own choice, one per core)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parse_checked(ap, argv)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    set_threads(args.threads, device)
    tracker_self_check()
    machine = machine_info(device)
    print(f"device {device}" + (f" ({machine['gpu']})" if "gpu" in machine else "")
          + f"; CPU {machine['cpu']}, {machine['usable_cores']} usable cores, torch {torch.__version__} "
          f"with {machine['torch_threads']} threads; load average {machine['loadavg_start'][0]:.2f}",
          flush=True)
    result: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "machine": machine}
    t0 = time.perf_counter()
    if args.lengths:
        result["memory"] = run_memory(args, device)
        machine["max_rss_after_memory_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.sample_tokens > 0:
        result["sample"] = run_sample(args, device)
    if args.train_steps > 0:
        result["train"] = run_train(args, device)
    machine["loadavg_end"] = list(os.getloadavg())
    machine["seconds"] = time.perf_counter() - t0

    print()
    if "memory" in result:
        print(f"memory: peak MB of tensors alive while computing one layer's relative logits (batch 1, "
              f"{args.heads} heads x {args.head_dim}, float32, inputs excluded, output included); "
              "logits MB = the L x L output, E_r MB = the L x D embeddings")
        print(format_memory(result["memory"], device.type == "cuda"))
        print(PAPER_NOTE)
        print()
    if "sample" in result:
        print(f"sampling: tokens/s from BOS, batch 1, untrained {CPU_SIZE.num_layers} x {CPU_SIZE.d_model} "
              f"model, cache median of {args.repeat}, recompute once")
        print(format_sample(result["sample"]))
        print()
    if "train" in result:
        print(f"training: tokens/s of forward+backward+AdamW, median of {args.repeat} repeats x "
              f"{args.train_steps} steps ({args.warmup} warm-up steps before each)"
              + ("; bf16 autocast" if device.type == "cuda" else ""))
        print(format_train(result["train"]))
    bad = [p for p, s in result.get("sample", {}).items() if s.get("same_tokens") is False]
    return finish(result, bad, "cached and recomputed sampling drew different tokens", args.out)


if __name__ == "__main__":
    raise SystemExit(0 if main()["ok"] else 1)
