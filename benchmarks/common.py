"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def write_result(out: Path | None, result: dict[str, Any]) -> None:
    """Write the run's JSON record to ``out`` (when given) and say so."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds for ``steps`` calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - t0


def finish(result: dict[str, Any], failed: list[str], what: str, out: Path | None) -> dict[str, Any]:
    """Record whether the run's equivalence checks held, say which failed, write the JSON."""
    result["ok"] = not failed
    if failed:
        print(f"FAIL: {what} for {', '.join(failed)}")
    write_result(out, result)
    return result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on: software, CPU, cores, threads, load, the GPU's name."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu": cpu_model(), "usable_cores": cores, "torch": torch.__version__,
                            "torch_threads": torch.get_num_threads(), "device": str(device),
                            "loadavg_start": list(os.getloadavg())}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


BUSY = 0.5  # load average above which the CPU is shared with other work


def set_threads(threads: int | None, device: torch.device) -> None:
    """``--threads``, or 1 thread on a busy CPU: torch's OpenMP threads spin at barriers, and
    with other processes on the cores its default of one thread per core made this
    machine's cached sampling ~100x and training ~7x slower than 1 thread."""
    busy = os.getloadavg()[0]
    if threads:
        torch.set_num_threads(threads)
    elif device.type == "cpu" and busy > BUSY and torch.get_num_threads() > 1:
        print(f"load average {busy:.2f} > {BUSY}: other processes use the CPU, so torch runs 1 thread "
              f"instead of {torch.get_num_threads()} (--threads N to choose)", flush=True)
        torch.set_num_threads(1)


def cache_vs_recompute(run: Callable[[int, bool], tuple[float, Any]], n: int, k: int, repeat: int,
                       label: str) -> dict[str, Any]:
    """Tokens/s of ``run(tokens, use_cache) -> (seconds, tokens)`` with the KV cache (median of
    ``repeat``, ``n`` tokens) and by full recompute (once, ``k`` tokens), and whether both drew
    the same tokens."""
    cache_s, cache_tokens = [], None
    for _ in range(repeat):
        s, cache_tokens = run(n, True)
        cache_s.append(s)
    rec: dict[str, Any] = {"cache_tokens": n, "cache_repeat_s": cache_s,
                           "cache_tokens_per_s": n / statistics.median(cache_s)}
    print(f"  {label}: cache {rec['cache_tokens_per_s']:.1f} tokens/s ({n} tokens)", flush=True)
    if k > 0:
        s, tokens = run(k, False)
        diff = (tokens != cache_tokens[:k]).nonzero()
        rec.update({"recompute_tokens": k, "recompute_s": s, "recompute_tokens_per_s": k / s,
                    "same_tokens": diff.numel() == 0,
                    "first_difference": int(diff[0]) if diff.numel() else None})
        rec["cache_over_recompute"] = rec["cache_tokens_per_s"] / rec["recompute_tokens_per_s"]
        print(f"  {label}: recompute {k / s:.1f} tokens/s ({k} tokens, {s:.1f} s), "
              f"same tokens: {rec['same_tokens']}", flush=True)
    return rec


def parse_checked(ap: argparse.ArgumentParser, argv: Any = None) -> argparse.Namespace:
    """Parse, then refuse ``--device cuda`` without a GPU and ``--repeat`` below 1."""
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    return args
