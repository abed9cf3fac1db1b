"""Music Transformer's figures: its JSB NLL beside the paper's, and the memory that skewing saves."""

from __future__ import annotations

import math

import numpy as np
from omegaconf import DictConfig

from tunelab.plotting import Skip, plt, read_table


def music_transformer_nll(cfg: DictConfig, runs: dict[str, dict]):
    table = read_table(cfg.paths.reports, "music_transformer_jsb")
    rows = [r for r in table if r.get("valid_nll") is not None]
    if not rows:
        raise Skip("the JSB table has no trained rows")
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(rows), 4))
    ax.bar(x - 0.2, [r["valid_nll"] for r in rows], 0.4, label="ours (valid)")
    ax.bar(x + 0.2, [r["published_valid_nll"] or math.nan for r in rows], 0.4, label="Huang et al. 2019")
    ax.set_xticks(x, [r["model"] for r in rows], rotation=15)
    ax.set(ylabel="NLL per token (nats)", title="JSB chorales, validation NLL")
    ax.legend()
    fig.tight_layout()
    return fig, "Music Transformer on JSB: NLL against the paper", (
        "Validation NLL per token of the voice-grid models beside Table 2 of Huang et al. (2019). "
        "Ours are CPU-sized and far shorter-trained; compare the ordering, not the values.")


def skewing_memory(cfg: DictConfig, runs: dict[str, dict]):
    import torch

    from tunelab.models.components.attention import relative_logits_causal, relative_logits_naive
    from tunelab.profiling import peak_bytes

    heads, dim, lengths = 4, 32, [64, 128, 256, 512, 1024]
    skewed, naive = [], []
    g = torch.Generator().manual_seed(cfg.seed)
    for L in lengths:
        q, emb = torch.randn(1, heads, L, dim, generator=g), torch.randn(heads, L, dim, generator=g)
        skewed.append(peak_bytes(relative_logits_causal, q, emb) / 1e6)
        naive.append(peak_bytes(relative_logits_naive, q, emb) / 1e6)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(lengths, naive, "o-", label="naive (Shaw et al.): L×L×D per-pair embeddings")
    ax.loglog(lengths, skewed, "s-", label="skewing (Huang et al.)")
    ax.set(xlabel="sequence length L", ylabel="peak intermediate memory (MB)",
           title=f"relative logits, one layer: {heads} heads × {dim} dims, float32")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, "Relative attention memory: skewing vs naive", (
        "Measured peak bytes of the tensors created while computing one layer's relative logits "
        f"(tunelab.profiling), L = {lengths[0]}…{lengths[-1]}: the naive version grows with L²·D, "
        f"skewing with L² (the logits themselves). At L = {lengths[-1]}: {naive[-1]:.0f} MB vs "
        f"{skewed[-1]:.1f} MB ({naive[-1] / skewed[-1]:.0f}×).")
