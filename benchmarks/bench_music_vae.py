"""MusicVAE: training steps/s of the hierarchical vs the flat 16-bar decoder at equal size,
and encode + decode round trips per second, measured side by side in one run.

* **train**: forward (z by reparameterization, teacher forcing), summed cross-entropy + KL
  with free bits 256 and beta 0.2, backward and ``Adam.step`` on a fixed batch of real
  16-bar windows (``data/processed/<corpus>/mel_16bar``, else random labels). Both models
  have one size (z 128, encoder 256, decoder 2 x 256: the CPU defaults until issue 17,
  twice their width now; the conductor adds one 2 x 256 LSTM to the hierarchical one),
  built from one seed. Variants alternate, in reverse order every other repeat; median of
  the repeats.
* **round trip**: windows/s of ``encode`` then ``decode`` (sampling, temperature 1) from the
  posterior mean, eval mode, batch ``--batch``: the hierarchical decoder samples bar after
  bar, the flat one step after step, so both take 256 sequential steps.

Usage: ``.venv/bin/python benchmarks/bench_music_vae.py [--device cpu|cuda] [--steps S]
[--warmup W] [--repeat R] [--batch B] [--corpus C] [--threads T] [--out F.json]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import finish, machine_info, parse_checked, set_threads, sync, time_steps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tunelab.models.components.music_vae import MusicVAE  # noqa: E402
from tunelab.models.vae_module import kl_cost, kl_divergence, reconstruction_nll  # noqa: E402
from tunelab.shards import load_token_split  # noqa: E402

SIZE = {"z_size": 128, "encoder_size": 256, "decoder_size": 256, "decoder_layers": 2}


def windows(corpus: str, batch: int, seed: int) -> tuple[torch.Tensor, str]:
    path = Path("data/processed") / corpus / "mel_16bar"
    if (path / "train.tokens.npy").is_file() or (path / "train.npz").is_file():
        w = np.concatenate(list(load_token_split(path, "train"))).reshape(-1, 256, 1)
        pick = np.random.default_rng(seed).choice(len(w), size=batch, replace=len(w) < batch)
        return torch.as_tensor(w[pick]), str(path)
    return torch.randint(0, 90, (batch, 256, 1), generator=torch.Generator().manual_seed(seed)), "random"


def train_step(net: MusicVAE, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    logits, mu, sigma = net(x)
    loss = reconstruction_nll(logits, x).mean() + 0.2 * kl_cost(kl_divergence(mu, sigma), 256).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def round_trip(net: MusicVAE, x: torch.Tensor) -> None:
    with torch.no_grad():
        net.decode(net.encode(x)[0])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per repeat")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--corpus", default="jazz", help="real windows from data/processed/<corpus>/mel_16bar")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = parse_checked(ap, argv)
    device = torch.device(args.device)
    set_threads(args.threads, device)
    machine = machine_info(device)
    x, source = windows(args.corpus, args.batch, 0)
    x = x.to(device)
    nets = {}
    for name, hier in (("flat", False), ("hierarchical", True)):
        torch.manual_seed(0)
        net = MusicVAE(bars=16, hierarchical=hier, **SIZE).to(device)
        nets[name] = (net, torch.optim.Adam(net.parameters(), lr=1e-3))
    params = {k: sum(p.numel() for p in n.parameters()) for k, (n, _) in nets.items()}
    print(f"device {device}; {machine['cpu']}, torch {torch.__version__} with {machine['torch_threads']} "
          f"threads; batch {args.batch} x 256 steps from {source}; parameters {params}", flush=True)
    t0 = time.perf_counter()
    train_s: dict[str, list[float]] = {k: [] for k in nets}
    trip_s: dict[str, list[float]] = {k: [] for k in nets}
    for r in range(args.repeat):
        order = list(nets) if r % 2 == 0 else list(reversed(nets))
        for name in order:
            net, opt = nets[name]
            net.train()
            step = partial(train_step, net, opt, x)
            train_s[name].append(time_steps(step, args.steps, args.warmup, device))
            net.eval()
            t = time.perf_counter()
            round_trip(net, x)
            sync(device)
            trip_s[name].append(time.perf_counter() - t)
    given = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result: dict[str, Any] = {"args": given, "machine": machine, "data": source,
                              "parameters": params, "size": SIZE}
    for name in nets:
        result[name] = {"train_steps_per_s": args.steps / statistics.median(train_s[name]),
                        "round_trips_per_s": args.batch / statistics.median(trip_s[name]),
                        "train_repeat_s": train_s[name], "round_trip_repeat_s": trip_s[name]}
    result["hierarchical_over_flat"] = {
        k: result["hierarchical"][k] / result["flat"][k] for k in ("train_steps_per_s", "round_trips_per_s")}
    machine["loadavg_end"] = list(os.getloadavg())
    machine["seconds"] = time.perf_counter() - t0
    print("\n| decoder | train steps/s | round trips/s (windows) |\n|---|---|---|")
    for name in nets:
        r = result[name]
        print(f"| {name} | {r['train_steps_per_s']:.2f} | {r['round_trips_per_s']:.1f} |")
    ratio = result["hierarchical_over_flat"]
    print(f"| hierarchical / flat | {ratio['train_steps_per_s']:.2f}x | {ratio['round_trips_per_s']:.2f}x |")
    return finish(result, [], "", args.out)


if __name__ == "__main__":
    main()
