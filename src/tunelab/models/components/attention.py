"""Multi-head attention shared by every Transformer family: absolute (vanilla) or relative
position self-attention, global or block-local, causal or not, with a key/value cache.

Relative attention follows Music Transformer (Huang et al. 2019, sec. 3.4): each head has
a learned embedding per relative distance, ``S_rel = Q E_r^T`` is computed against the
``L`` distances only (L x L, not the L x L x D of Shaw et al. 2018), and the "skewing"
procedure (pad a column, reshape, drop a row) moves each entry to its absolute key column.
Distances of ``max_relative_position`` (M) or more get no relative logit (zero), as in
tensor2tensor, which pads the table with zero rows there (``get_relative_embeddings_left``
and ``get_relative_embeddings_left_right`` in ``layers/common_attention.py``); Shaw et al.
would instead clip them to the farthest embedding.

Embedding row ``m`` of a causal table holds distance ``M - 1 - m`` (row ``M - 1`` is the
query itself), as in tensor2tensor's ``_generate_relative_positions_embeddings`` for
``dot_product_self_attention_relative_v2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _distance_table(emb: torch.Tensor, length: int) -> torch.Tensor:
    """Rows for distances ``length - 1 .. 0`` of a causal table (H, M, D): the last
    ``length`` rows, with zero rows in front for distances ``M ..`` when ``length > M``."""
    M = emb.shape[1]
    # t2t get_relative_embeddings_left: pad_length = max(length - M, 0) zero rows, then slice
    return F.pad(emb, (0, 0, max(length - M, 0), 0))[:, max(M - length, 0):]


def skew_masked(rel: torch.Tensor) -> torch.Tensor:
    """(..., L, L) logits by relative column (column c = distance L-1-c) -> by absolute key
    column, for keys at or before the query; entries above the diagonal are garbage.

    Music Transformer's skewing: pad one column on the left, reshape to (L+1, L), drop the
    first row. No tensor bigger than (L+1) x L is made.
    """
    *batch, L, _ = rel.shape
    return F.pad(rel, (1, 0)).reshape(*batch, L + 1, L)[..., 1:, :]


def skew_unmasked(rel: torch.Tensor) -> torch.Tensor:
    """(..., L, 2L-1) logits by relative column (column c = offset c - (L-1) of the key
    from the query) -> (..., L, L) by absolute key column; the bidirectional skew of
    tensor2tensor's ``_relative_position_to_absolute_position_unmasked``."""
    *batch, L, _ = rel.shape
    flat = F.pad(rel, (0, 1)).reshape(*batch, L * 2 * L)
    flat = F.pad(flat, (0, L - 1))
    return flat.reshape(*batch, L + 1, 2 * L - 1)[..., :L, L - 1:]


def relative_logits_causal(q: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """``S_rel[b, h, i, j] = q[b, h, i] . E[distance i - j]`` for j <= i, by skewing.

    Args:
        q: queries (B, H, L, D).
        emb: causal relative embeddings (H, M, D).
    """
    rel = torch.einsum("bhld,hmd->bhlm", q, _distance_table(emb, q.shape[2]))
    return skew_masked(rel)


def relative_logits_bidirectional(q: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """``S_rel[b, h, i, j] = q[b, h, i] . E[offset j - i]`` for all i, j, by skewing.

    Args:
        q: queries (B, H, L, D).
        emb: embeddings (H, 2M-1, D); row ``M - 1 + o`` holds offset ``o``; offsets with
            ``|o| >= M`` get a zero logit.
    """
    L, M = q.shape[2], (emb.shape[1] + 1) // 2
    # t2t get_relative_embeddings_left_right: max(L - M, 0) zero rows on each side, then slice
    pad = max(L - M, 0)
    table = F.pad(emb, (0, 0, pad, pad))[:, max(M - L, 0):][:, :2 * L - 1]
    rel = torch.einsum("bhld,hmd->bhlm", q, table)
    return skew_unmasked(rel)


def relative_logits_gather(q: torch.Tensor, emb: torch.Tensor, q_pos: torch.Tensor,
                           k_pos: torch.Tensor) -> torch.Tensor:
    """Causal relative logits for arbitrary query/key positions by indexing ``Q E^T``
    (cost Lq x M + Lq x Lk). Used for cached decoding (one new query row) and block-local
    attention; future keys get the distance-0 entry (they are masked anyway), keys at
    distance ``M`` or more a zero logit."""
    M = emb.shape[1]
    # column 0 is a zero logit for distances >= M (t2t pads the table with zeros there)
    rel = F.pad(torch.einsum("bhld,hmd->bhlm", q, emb), (1, 0))  # (B, H, Lq, M + 1)
    dist = (q_pos[:, None] - k_pos[None, :]).clamp(0, M)
    idx = (M - dist).expand(*rel.shape[:2], -1, -1)
    return rel.gather(-1, idx)


def relative_logits_naive(q: torch.Tensor, emb: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """Shaw et al. (2018): materialize R (L, L, D) of per-pair embeddings; the reference
    the skewed logits are tested against (and the memory baseline of the benchmark). Pairs
    at distance ``M`` or more get a zero embedding (tensor2tensor's zero padding)."""
    L = q.shape[2]
    pos = torch.arange(L, device=q.device)
    i, j = pos[:, None], pos[None, :]
    if causal:
        M = emb.shape[1]
        R = emb[:, M - 1 - (i - j).clamp(0, M - 1)]  # (H, L, L, D)
        used = (j <= i) & (i - j < M)
    else:
        M = (emb.shape[1] + 1) // 2
        R = emb[:, (j - i).clamp(-(M - 1), M - 1) + M - 1]
        used = (j - i).abs() < M
    return torch.einsum("bhid,hijd->bhij", q, R * used[None, :, :, None])


@dataclass
class KVCache:
    """Keys and values seen so far by one attention layer, (B, H, T, D) each."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]


class MultiHeadAttention(nn.Module):
    """Self- or cross-attention with optional relative positions and block-local windows.

    Args:
        d_model: model width; split into ``num_heads`` heads.
        num_heads: number of heads.
        dropout: attention-weight dropout.
        causal: each position sees itself and the past only (decoders).
        relative: add Music Transformer relative-position logits (self-attention only).
        max_relative_position: number of distinct distances (M); keys at distance M or more
            get no relative logit (zero, as tensor2tensor pads its table with zeros).
        block_size: if set (causal only), local attention: queries in block n see blocks
            n-1 and n (Music Transformer's local variant), so memory is linear in length.
        cross: keys and values come from ``memory`` (an encoder output) instead of ``x``.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, *, causal: bool = True,
                 relative: bool = False, max_relative_position: int = 512,
                 block_size: int | None = None, cross: bool = False) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if block_size is not None and not causal:
            raise ValueError("block-local attention is implemented for causal attention only")
        if cross and (relative or block_size):
            raise ValueError("cross-attention takes no relative positions or blocks")
        causal = causal and not cross  # a decoder position may read the whole encoder output
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.causal, self.relative, self.block_size, self.cross = causal, relative, block_size, cross
        self.dropout = dropout
        self.fused = True  # False: softmax(QK^T/sqrt(d) + mask) V written out (benchmark baseline)
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.kv_proj = nn.Linear(d_model, 2 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        if relative:
            rows = max_relative_position if causal else 2 * max_relative_position - 1
            self.rel_emb = nn.Parameter(torch.randn(num_heads, rows, self.head_dim) * self.head_dim**-0.5)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None,
                cache: KVCache | None = None, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, L, d_model) -> (B, L, d_model). With ``cache``, ``x`` holds the new
        positions only; their keys/values are appended to the cache (cross-attention
        caches the projected ``memory`` on first use). ``key_mask`` (B, Lk) is False at
        padded keys (bidirectional and cross-attention over padded batches)."""
        q = self._heads(self.q_proj(x))
        past = 0 if cache is None or self.cross else cache.length
        if self.cross:
            if cache is not None and cache.k is not None:
                k, v = cache.k, cache.v
            else:
                k, v = (self._heads(t) for t in self.kv_proj(memory).chunk(2, -1))
                if cache is not None:
                    cache.k, cache.v = k, v
        else:
            k, v = (self._heads(t) for t in self.kv_proj(x).chunk(2, -1))
            if cache is not None:
                if cache.k is not None:
                    k, v = torch.cat([cache.k, k], 2), torch.cat([cache.v, v], 2)
                cache.k, cache.v = k, v
        p = self.dropout if self.training else 0.0
        if self.block_size is not None and past == 0:
            y = self._local(q, k, v, p)
        else:
            y = self._global(q, k, v, past, p, key_mask)
        return self.out_proj(y.transpose(1, 2).reshape(x.shape[0], -1, self.num_heads * self.head_dim))

    def _sdpa(self, q, k, v, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False):
        """PyTorch's fused kernel, or the same attention as plain matmuls when not ``fused``."""
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p,
                                                  is_causal=is_causal)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if is_causal:
            scores = scores.masked_fill(torch.ones(q.shape[2], k.shape[2], dtype=torch.bool,
                                                   device=q.device).triu(1), float("-inf"))
        if attn_mask is not None:
            scores = scores + attn_mask
        return F.dropout(scores.softmax(-1), dropout_p, self.training) @ v

    def _mask(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """Boolean (Lq, Lk): True where the query may attend."""
        allowed = k_pos[None, :] <= q_pos[:, None]
        if self.block_size is not None:
            b = self.block_size
            allowed &= k_pos[None, :] >= (q_pos[:, None] // b - 1) * b
        return allowed

    def _global(self, q, k, v, past: int, p: float, key_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        Lq, Lk = q.shape[2], k.shape[2]
        if not self.relative and key_mask is None:
            if not self.causal or Lq == 1 and self.block_size is None:
                return self._sdpa(q, k, v, dropout_p=p)
            if past == 0 and self.block_size is None:
                return self._sdpa(q, k, v, dropout_p=p, is_causal=True)
        q_pos = torch.arange(past, past + Lq, device=q.device)
        k_pos = torch.arange(Lk, device=q.device)
        bias = q.new_zeros(())
        if self.relative:
            if not self.causal:
                bias = relative_logits_bidirectional(q, self.rel_emb)
            elif past == 0 and self.block_size is None:
                bias = relative_logits_causal(q, self.rel_emb)
            else:
                bias = relative_logits_gather(q, self.rel_emb, q_pos, k_pos)
            bias = bias / math.sqrt(self.head_dim)  # SDPA scales QK^T only; scale S_rel alike
        if self.causal:
            bias = bias + torch.zeros(Lq, Lk, dtype=q.dtype, device=q.device).masked_fill(
                ~self._mask(q_pos, k_pos), float("-inf"))
        if key_mask is not None:
            bias = bias + torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device).masked_fill(
                ~key_mask, float("-inf"))[:, None, None, :]
        return self._sdpa(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=p)

    def _local(self, q, k, v, p: float) -> torch.Tensor:
        """Block-local causal attention over blocks (n-1, n); memory O(L x 2b)."""
        B, H, L, D = q.shape
        b = self.block_size
        pad = -L % b
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        n = (L + pad) // b
        qb = q.view(B, H, n, b, D)

        def window(t: torch.Tensor) -> torch.Tensor:  # (B, H, n, 2b, D): previous + own block
            blocks = t.view(B, H, n, b, D)
            prev = F.pad(blocks, (0, 0, 0, 0, 1, 0))[:, :, :-1]
            return torch.cat([prev, blocks], 3)

        kw, vw = window(k), window(v)
        q_pos = torch.arange(b, 2 * b, device=q.device)  # positions within the 2b window
        k_pos = torch.arange(2 * b, device=q.device)
        allowed = (k_pos[None, :] <= q_pos[:, None]).expand(n, b, 2 * b).clone()
        allowed[0, :, :b] = False  # the first block has no previous block
        allowed &= ((torch.arange(n, device=q.device)[:, None] - 1) * b + k_pos[None, :] < L)[:, None, :]
        bias = torch.zeros(n, b, 2 * b, dtype=q.dtype, device=q.device).masked_fill(~allowed, float("-inf"))
        if self.relative:
            rel = relative_logits_gather(qb.reshape(B, H, n * b, D), self.rel_emb,
                                         q_pos.repeat(n), k_pos).view(B, H, n, b, 2 * b)
            bias = bias + rel / math.sqrt(D)
        y = self._sdpa(qb, kw, vw, attn_mask=bias.to(q.dtype), dropout_p=p)
        return y.reshape(B, H, n * b, D)[:, :, :L]
