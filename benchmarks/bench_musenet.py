"""MuseNet: training throughput with PyTorch's fused attention vs the same attention written as
plain matmuls + softmax, and generation with the key/value cache vs full recompute.

* **train**: tokens/s of forward, cross-entropy, backward and ``AdamW.step`` (the config's lr 1e-3,
  betas 0.9/0.98, weight decay 0.01; dropout 0.1 or ``--dropout``) of an untrained ``MuseNetLM``
  on a fixed random batch of token ids from the real vocabulary (``MuseNetEncoding(["bach",
  "children", "jazz"])``, wait steps set from the encoding, labels = the inputs shifted by one).
  **fused** runs ``F.scaled_dot_product_attention``; **matmul** sets ``fused = False`` on every
  attention module: ``softmax(QK^T / sqrt(d) + causal mask) V`` written out. The SDPA kernel the
  fused path gets is recorded (on the CPU, dropout > 0 sends it to SDPA's math fallback). Both
  models are built from the same seed (same weights). Before timing, one forward + backward per
  variant with dropout off (the two paths draw different dropout masks) must give the same loss
  to 1e-4; the bytes of the tensors autograd saves for backward in that step (activations;
  parameters excluded, each storage once) are recorded too. The variants alternate, in reverse
  order every other repeat; median of the repeats. On CUDA: bf16 autocast,
  ``torch.cuda.max_memory_allocated`` per variant (and its peak above what was allocated before
  the timed block), the card's name.
* **generate**: tokens/s of ``sampling.generate`` from the header prompt ``[bos, style:bach,
  inst:piano, begin]``, batch 1, N new tokens, temperature 1, eval mode (fused attention):
  ``cache`` feeds one token per step and keeps keys/values, ``recompute`` runs the whole prefix
  every step. Same generator seed: both must draw the same tokens (exit status 1 if not).

Sizes: CPU = the project's default (``conf/model/musenet.yaml``: d_model 128, 3 layers, 4 heads,
d_ff 512, max_len 512; batch 16 x 512); CUDA = d_model 512, 8 layers, 8 heads, d_ff 2048,
max_len 2048, batch 8 x 2048 (generation in float32 at the same size). Weights are untrained:
throughput does not depend on them. See README.md.

Usage: ``.venv/bin/python benchmarks/bench_musenet.py [--device cpu|cuda] [--train-steps S]
[--warmup W] [--repeat R] [--gen-tokens N] [--recompute-tokens K] [--threads T] [--out F.json]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend

from common import (
    BUSY,
    cache_vs_recompute,
    finish,
    machine_info,
    parse_checked,
    set_threads,
    sync,
    time_steps,
)
from tunelab.encodings.musenet import MuseNetEncoding
from tunelab.models.components.musenet import MuseNetLM
from tunelab.models.components.sampling import generate

STYLES = ["bach", "children", "jazz"]
VARIANTS = ("fused", "matmul")
MB = 1e6
LOSS_TOL = 1e-4


@dataclass(frozen=True)
class Size:
    d_model: int
    num_layers: int
    num_heads: int
    d_ff: int
    max_len: int
    batch: int
    seq_len: int


CPU_SIZE = Size(d_model=128, num_layers=3, num_heads=4, d_ff=512, max_len=512, batch=16, seq_len=512)
CUDA_SIZE = Size(d_model=512, num_layers=8, num_heads=8, d_ff=2048, max_len=2048, batch=8, seq_len=2048)


def build_model(enc: MuseNetEncoding, size: Size, seed: int, device: torch.device, fused: bool,
                dropout: float = 0.1) -> MuseNetLM:
    torch.manual_seed(seed)
    net = MuseNetLM(enc.num_classes, d_model=size.d_model, num_layers=size.num_layers,
                    num_heads=size.num_heads, d_ff=size.d_ff, dropout=dropout, max_len=size.max_len)
    net.set_wait_steps(enc.wait_steps)
    set_fused(net, fused)
    return net.to(device)


def set_fused(net: torch.nn.Module, fused: bool) -> int:
    """Set ``fused`` on every module that has it; how many there were."""
    mods = [m for m in net.modules() if hasattr(m, "fused")]
    for m in mods:
        m.fused = fused
    return len(mods)


def sdpa_backend(size: Size, dropout: float, device: torch.device) -> str:
    """The kernel ``F.scaled_dot_product_attention`` picks for the training call (causal, this
    dropout; bf16 on CUDA), by PyTorch's private ``torch._fused_sdp_choice``."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    q = torch.empty(size.batch, size.num_heads, size.seq_len, size.d_model // size.num_heads, dtype=dtype,
                    device=device, requires_grad=True)
    try:
        return SDPBackend(torch._fused_sdp_choice(q, q, q, None, dropout, True)).name
    except Exception as e:  # private API: record why rather than fail
        return f"unknown ({type(e).__name__})"


# --- training ----------------------------------------------------------------------------------


class TrainBench:
    """One model (fused or matmul attention), its AdamW and the shared fixed batch."""

    def __init__(self, enc: MuseNetEncoding, size: Size, fused: bool, seed: int, dropout: float,
                 batch: torch.Tensor, device: torch.device) -> None:
        self.model = build_model(enc, size, seed, device, fused, dropout).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
        self.inputs, self.labels = batch[:, :-1], batch[:, 1:]
        self.device = device
        self.params = sum(p.numel() for p in self.model.parameters())
        self.tokens = self.inputs.numel()

    def loss(self) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits, _ = self.model(self.inputs)
        return F.cross_entropy(logits.float().flatten(0, 1), self.labels.flatten())

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.loss().backward()
        self.opt.step()

    def check(self) -> dict[str, float]:
        """Loss of one forward + backward with dropout off (no optimizer step), and the bytes
        autograd saved for backward in it."""
        self.model.eval()
        params = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            s = t.untyped_storage()
            if s.data_ptr() not in params:
                saved[s.data_ptr()] = s.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = self.loss()
        loss.backward()
        self.model.zero_grad(set_to_none=True)
        self.model.train()
        return {"loss": float(loss.detach()), "saved_for_backward_bytes": sum(saved.values())}


def run_train(args: argparse.Namespace, enc: MuseNetEncoding, size: Size,
              device: torch.device) -> dict[str, Any]:
    g = torch.Generator().manual_seed(args.seed + 1)
    batch = torch.randint(0, enc.num_classes, (size.batch, size.seq_len + 1), generator=g).to(device)
    benches = {v: TrainBench(enc, size, v == "fused", args.seed, args.dropout, batch, device)
               for v in VARIANTS}
    out: dict[str, Any] = {"size": asdict(size), "dropout": args.dropout,
                           "attention_modules": set_fused(benches["matmul"].model, False),
                           "sdpa_backend": sdpa_backend(size, args.dropout, device),
                           "sdpa_backend_dropout_off": sdpa_backend(size, 0.0, device)}
    print(f"  train: fused attention runs SDPA backend {out['sdpa_backend']} (dropout {args.dropout}), "
          f"{out['sdpa_backend_dropout_off']} with dropout off", flush=True)
    for v, b in benches.items():
        out[v] = {"params": b.params, "first_step": b.check()}
        print(f"  train {v}: first-step loss {out[v]['first_step']['loss']:.6f}, saved for backward "
              f"{out[v]['first_step']['saved_for_backward_bytes'] / MB:.0f} MB", flush=True)
    diff = abs(out["fused"]["first_step"]["loss"] - out["matmul"]["first_step"]["loss"])
    out["first_step_loss_diff"] = diff
    out["same_loss"] = diff <= LOSS_TOL
    runs: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(args.repeat):
        for v in VARIANTS if r % 2 == 0 else reversed(VARIANTS):
            if device.type == "cuda":
                sync(device)
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            runs[v].append(time_steps(benches[v].step, args.train_steps, args.warmup, device))
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device)
                rec = out[v]
                rec["cuda_max_memory_allocated"] = max(rec.get("cuda_max_memory_allocated", 0), peak)
                rec["cuda_peak_above_resident"] = max(rec.get("cuda_peak_above_resident", 0), peak - base)
            print(f"  train repeat {r + 1}/{args.repeat} {v}: "
                  f"{args.train_steps * benches[v].tokens / runs[v][-1]:.0f} tokens/s", flush=True)
    for v, secs in runs.items():
        tokens = args.train_steps * benches[v].tokens
        out[v]["tokens_per_s"] = tokens / statistics.median(secs)
        out[v]["repeat_tokens_per_s"] = [tokens / s for s in secs]
    out["fused_over_matmul"] = out["fused"]["tokens_per_s"] / out["matmul"]["tokens_per_s"]
    return out


# --- generation --------------------------------------------------------------------------------


def generate_once(net: MuseNetLM, prompt: torch.Tensor, num_new: int, cached: bool, seed: int,
                  device: torch.device) -> tuple[float, torch.Tensor]:
    """Seconds to generate ``num_new`` tokens after ``prompt``, and the new tokens."""
    gen = torch.Generator(device=device).manual_seed(seed)
    sync(device)
    t0 = time.perf_counter()
    tokens = generate(lambda t, c: net(t, c), prompt, num_new,
                      new_cache=net.new_cache if cached else None, generator=gen)
    sync(device)
    return time.perf_counter() - t0, tokens[0, prompt.shape[1]:].cpu()


def run_generate(args: argparse.Namespace, enc: MuseNetEncoding, size: Size,
                 device: torch.device) -> dict[str, Any]:
    net = build_model(enc, size, args.seed, device, fused=True).eval()
    prompt = torch.tensor([[net.bos, *enc.header("bach", ["piano"]).tolist()]], device=device)
    n, k = args.gen_tokens, min(args.recompute_tokens, args.gen_tokens)
    if prompt.shape[1] + n > size.max_len:
        raise SystemExit(f"--gen-tokens {n}: prompt ({prompt.shape[1]}) + {n} exceeds the context of "
                         f"{size.max_len}")
    generate_once(net, prompt, 8, True, args.seed, device)  # warm-up
    generate_once(net, prompt, 8, False, args.seed, device)
    def run(tokens: int, cache: bool) -> tuple[float, torch.Tensor]:
        return generate_once(net, prompt, tokens, cache, args.seed, device)

    rec = cache_vs_recompute(run, n, k, args.repeat, "generate")
    rec["prompt_tokens"] = prompt.shape[1]
    return rec


# --- report ------------------------------------------------------------------------------------


def format_train(t: dict[str, Any]) -> str:
    cuda = "cuda_max_memory_allocated" in t["fused"]
    lines = [f"{'attention':<9} {'batch':>5} {'seq':>5} {'params':>9} {'tokens/s':>9} {'x matmul':>8} "
             f"{'loss step 1':>11} {'saved MB':>8}"
             + (f" {'max alloc MB':>12} {'step MB':>8}" if cuda else "")]
    size = t["size"]
    for v in VARIANTS:
        s = t[v]
        line = (f"{v:<9} {size['batch']:>5} {size['seq_len']:>5} {s['params']:>9} {s['tokens_per_s']:>9.0f} "
                f"{s['tokens_per_s'] / t['matmul']['tokens_per_s']:>8.2f} {s['first_step']['loss']:>11.6f} "
                f"{s['first_step']['saved_for_backward_bytes'] / MB:>8.0f}")
        if cuda:
            line += (f" {s['cuda_max_memory_allocated'] / MB:>12.0f} "
                     f"{s['cuda_peak_above_resident'] / MB:>8.0f}")
        lines.append(line)
    lines.append(f"first-step loss |fused - matmul| = {t['first_step_loss_diff']:.1e} "
                 f"(same to {LOSS_TOL:g}: {t['same_loss']})")
    return "\n".join(lines)


def format_generate(s: dict[str, Any]) -> str:
    nan = float("nan")
    return "\n".join([
        f"{'prompt':>6} {'tokens':>6} {'cache/s':>8} {'recomp tokens':>13} {'recomp/s':>8} "
        f"{'cache/recomp':>12} {'same':>5}",
        f"{s['prompt_tokens']:>6} {s['cache_tokens']:>6} {s['cache_tokens_per_s']:>8.1f} "
        f"{s.get('recompute_tokens', 0):>13} {s.get('recompute_tokens_per_s', nan):>8.1f} "
        f"{s.get('cache_over_recompute', nan):>12.1f} {str(s.get('same_tokens', '-')):>5}"])


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--train-steps", type=int, default=4, help="timed training steps per repeat (0: skip)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed training steps before each timed block")
    ap.add_argument("--repeat", type=int, default=3,
                    help="repeats of training and cached generation (median)")
    ap.add_argument("--gen-tokens", type=int, default=448,
                    help="tokens generated with the cache (prompt + N must fit max_len; 0: skip)")
    ap.add_argument("--recompute-tokens", type=int,
                    help="tokens generated by full recompute (quadratic; default N, at most N; 0: skip)")
    ap.add_argument("--dropout", type=float, default=0.1,
                    help="dropout of the trained models (default: the config's 0.1; on the CPU, SDPA has "
                         "no fused kernel with dropout and runs its math path)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int,
                    help="torch.set_num_threads(N) (default on the CPU: 1 if the load average at start is "
                         f"above {BUSY}, else torch's own choice, one per core)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parse_checked(ap, argv)
    if args.recompute_tokens is None:
        args.recompute_tokens = args.gen_tokens
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    set_threads(args.threads, device)
    machine = machine_info(device)
    size = CUDA_SIZE if device.type == "cuda" else CPU_SIZE
    enc = MuseNetEncoding(STYLES)
    print(f"device {device}" + (f" ({machine['gpu']})" if "gpu" in machine else "")
          + f"; CPU {machine['cpu']}, {machine['usable_cores']} usable cores, torch {torch.__version__} "
          f"with {machine['torch_threads']} threads; load average {machine['loadavg_start'][0]:.2f}; "
          f"vocabulary {enc.num_classes} tokens", flush=True)
    result: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "machine": machine,
        "vocab_size": enc.num_classes, "weights": "untrained (seeded)"}
    t0 = time.perf_counter()
    if args.train_steps > 0:
        result["train"] = run_train(args, enc, size, device)
    if args.gen_tokens > 0:
        result["generate"] = run_generate(args, enc, size, device)
    machine["loadavg_end"] = list(os.getloadavg())
    machine["seconds"] = time.perf_counter() - t0

    arch = (f"untrained {size.num_layers} x {size.d_model} model ({size.num_heads} heads, d_ff {size.d_ff}, "
            f"{enc.num_classes}-token vocabulary)")
    print()
    if "train" in result:
        print(f"training: tokens/s of forward+cross-entropy+backward+AdamW, {arch}, median of {args.repeat} "
              f"repeats x {args.train_steps} steps ({args.warmup} warm-up steps before each)"
              + ("; bf16 autocast" if device.type == "cuda" else "")
              + f"; dropout {args.dropout}: fused = SDPA backend {result['train']['sdpa_backend']}"
              + "; loss step 1 and saved MB (for backward) with dropout off")
        print(format_train(result["train"]))
        print()
    if "generate" in result:
        print(f"generation: tokens/s after [bos, style:bach, inst:piano, begin], batch 1, {arch}, "
              f"cache median of {args.repeat}, recompute once")
        print(format_generate(result["generate"]))
    failed = []
    if not result.get("train", {}).get("same_loss", True):
        failed.append("training (first-step loss differs)")
    if result.get("generate", {}).get("same_tokens") is False:
        failed.append("generation (cache and recompute drew different tokens)")
    return finish(result, failed, "fused/matmul or cache/recompute disagree", args.out)


if __name__ == "__main__":
    raise SystemExit(0 if main()["ok"] else 1)
