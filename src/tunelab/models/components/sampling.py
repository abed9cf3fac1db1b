"""Autoregressive sampling for token models: temperature, top-k, top-p (nucleus), and
incremental decoding with a key/value cache (or full recompute, for checking it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from tqdm import tqdm

# forward(tokens, cache) -> (logits, cache); cache None means recompute from scratch.
Forward = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def scale_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits divided by ``temperature``: the one place every sampler applies it.

    Raises:
        ValueError: temperature <= 0 (greedy decoding is its own switch).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature}); use greedy decoding instead")
    return logits / temperature


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Scale by 1/temperature, keep the ``top_k`` best and the smallest set whose
    probability reaches ``top_p`` (Holtzman et al. 2020); the rest get -inf.

    Raises:
        ValueError: temperature <= 0, top_k < 1 or top_p outside (0, 1].
    """
    logits = scale_logits(logits, temperature)
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (got {top_k})")
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (got {top_p})")
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the tokens ranked above it already reach top_p.
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


@torch.no_grad()
def generate(forward: Forward, prompt: torch.Tensor, num_new: int, *, new_cache: Callable[[], Any] | None,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             greedy: bool = False, generator: torch.Generator | None = None,
             constrain: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
             progress: bool = False) -> torch.Tensor:
    """Extend ``prompt`` (B, P) by ``num_new`` tokens; returns (B, P + num_new).

    With ``new_cache`` the prompt is fed once and then one token per step, reusing the
    cached keys/values; with None every step recomputes the whole sequence. Both draw
    the same random numbers, so they give the same tokens. ``constrain(logits, t)`` may
    mask logits of the t-th new token (e.g. to keep a grammar).
    """
    tokens = prompt
    cache = new_cache() if new_cache is not None else None
    logits, cache = forward(prompt, cache)
    for t in tqdm(range(num_new), desc="generate", unit="token", disable=not progress, leave=False):
        last = logits[:, -1].float()
        if constrain is not None:
            last = constrain(last, t)
        if greedy:
            nxt = last.argmax(-1, keepdim=True)
        else:
            probs = filter_logits(last, temperature, top_k, top_p).softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
        tokens = torch.cat([tokens, nxt], 1)
        if t == num_new - 1:
            break
        if cache is not None:
            logits, cache = forward(nxt, cache)
        else:
            logits, _ = forward(tokens, None)
    return tokens
