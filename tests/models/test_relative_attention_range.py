"""Faithfulness to tensor2tensor beyond the relative-embedding table and at the token
embedding: distances of ``max_relative_position`` (M) or more get a zero relative logit
(t2t zero-pads the table, ``get_relative_embeddings_left[_right]``), and token embeddings
start at RMS ~1 after the sqrt(d) multiplier (t2t's symbol modality, N(0, d**-0.5))."""

import math

import pytest
import torch

from tunelab.models.components.attention import (
    MultiHeadAttention,
    relative_logits_bidirectional,
    relative_logits_causal,
    relative_logits_gather,
    relative_logits_naive,
)
from tunelab.models.components.musenet import MuseNetLM
from tunelab.models.components.transformer import TransformerEncoderDecoder, TransformerLM


def _explicit(q: torch.Tensor, emb: torch.Tensor, causal: bool) -> torch.Tensor:
    """S_rel entry by entry: q_i . E[d] for distances inside the table, 0 beyond it."""
    B, H, L, _ = q.shape
    out = torch.zeros(B, H, L, L, dtype=q.dtype)
    M = emb.shape[1] if causal else (emb.shape[1] + 1) // 2
    for i in range(L):
        for j in range(L):
            if causal and 0 <= i - j < M:
                out[:, :, i, j] = torch.einsum("bhd,hd->bh", q[:, :, i], emb[:, M - 1 - (i - j)])
            elif not causal and abs(j - i) < M:
                out[:, :, i, j] = torch.einsum("bhd,hd->bh", q[:, :, i], emb[:, M - 1 + j - i])
    return out


def _inputs(L: int, rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 3, L, 8, generator=g, dtype=torch.float64),
            torch.randn(3, rows, 8, generator=g, dtype=torch.float64))


def test_causal_logits_are_zero_at_and_beyond_max_distance():
    L, M = 12, 4
    q, emb = _inputs(L, M, 0)
    i, j = torch.arange(L)[:, None], torch.arange(L)[None, :]
    far, near = (i - j >= M), (i - j >= 0) & (i - j < M)
    for rel in (relative_logits_causal(q, emb), relative_logits_naive(q, emb),
                relative_logits_gather(q, emb, torch.arange(L), torch.arange(L))):
        assert (rel[..., far] == 0).all()
        assert (rel[..., near] != 0).all()


def test_bidirectional_logits_are_zero_at_and_beyond_max_offset():
    L, M = 12, 4
    q, emb = _inputs(L, 2 * M - 1, 1)
    offset = torch.arange(L)[None, :] - torch.arange(L)[:, None]
    for rel in (relative_logits_bidirectional(q, emb), relative_logits_naive(q, emb, causal=False)):
        assert (rel[..., offset.abs() >= M] == 0).all()
        assert (rel[..., offset.abs() < M] != 0).all()


@pytest.mark.parametrize("L", [1, 3, 4, 5, 9, 33])
@pytest.mark.parametrize("M", [1, 4, 7])
def test_skewed_naive_and_gather_match_explicit_zero_padding(L, M):
    q, emb = _inputs(L, M, L * 100 + M)
    lower = torch.tril(torch.ones(L, L, dtype=torch.bool))
    expected = _explicit(q, emb, causal=True)
    gathered = relative_logits_gather(q, emb, torch.arange(L), torch.arange(L))
    for rel in (relative_logits_causal(q, emb), relative_logits_naive(q, emb), gathered):
        assert torch.allclose(rel[..., lower], expected[..., lower])
    q, emb2 = _inputs(L, 2 * M - 1, L * 100 + M + 1)
    expected = _explicit(q, emb2, causal=False)
    assert torch.allclose(relative_logits_bidirectional(q, emb2), expected)
    assert torch.allclose(relative_logits_naive(q, emb2, causal=False), expected)


def test_gather_for_arbitrary_positions_zeroes_far_keys():
    """One cached query at position 10 against keys 0..10 with M = 4."""
    q, emb = _inputs(1, 4, 2)
    rel = relative_logits_gather(q, emb, torch.tensor([10]), torch.arange(11))
    assert (rel[..., :7] == 0).all()
    expected = torch.einsum("bhd,hmd->bhm", q[:, :, 0], emb)  # distances 3, 2, 1, 0
    assert torch.allclose(rel[:, :, 0, 7:], expected)


def _attention_reference(attn: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention with the explicit (zero beyond M) relative logits and the mask."""
    q = attn._heads(attn.q_proj(x))
    k, v = (attn._heads(t) for t in attn.kv_proj(x).chunk(2, -1))
    logits = (q @ k.transpose(-1, -2) + _explicit(q, attn.rel_emb, attn.causal)) / math.sqrt(attn.head_dim)
    pos = torch.arange(x.shape[1])
    if attn.causal:
        logits = logits.masked_fill(~attn._mask(pos, pos), float("-inf"))
    y = logits.softmax(-1) @ v
    return attn.out_proj(y.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


@pytest.mark.parametrize("causal,block", [(True, None), (True, 4), (False, None)])
def test_attention_beyond_table_matches_explicit_reference(causal, block):
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, causal=causal, relative=True, max_relative_position=3,
                              block_size=block).double().eval()
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    assert torch.allclose(attn(x), _attention_reference(attn, x), atol=1e-10)


@pytest.mark.parametrize("block", [None, 8])
def test_cached_decode_longer_than_table_equals_full_forward(block):
    torch.manual_seed(0)
    net = TransformerLM(24, d_model=32, num_layers=2, num_heads=4, d_ff=64, dropout=0.0,
                        position="relative", max_relative_position=5, block_size=block).double().eval()
    tokens = torch.cat([torch.full((2, 1), net.bos), torch.randint(0, 24, (2, 30))], 1)
    full = net(tokens)[0]
    cache = net.new_cache()
    stepwise = torch.cat([net(tokens[:, :3], cache)[0]]
                         + [net(tokens[:, t:t + 1], cache)[0] for t in range(3, tokens.shape[1])], 1)
    assert torch.allclose(full, stepwise, atol=1e-10)


def _rms(x: torch.Tensor) -> float:
    return x.pow(2).mean().sqrt().item()


@pytest.mark.parametrize("position", ["absolute", "relative"])
def test_token_embeddings_start_at_unit_rms(position):
    torch.manual_seed(0)
    d = 256
    net = TransformerLM(300, d_model=d, num_layers=1, num_heads=4, d_ff=64, position=position)
    tokens = torch.randint(0, 301, (8, 256))
    token_part = net.embed(tokens) * math.sqrt(d)
    assert 0.9 < _rms(token_part) < 1.1
    x = net.embed_tokens(tokens)
    if position == "relative":
        assert torch.equal(x, token_part)
    else:  # sinusoid positions have RMS 1/sqrt(2): tokens no longer swamped (was ~0.45)
        ratio = token_part.norm() / (x - token_part).norm()
        assert 1.25 < ratio < 1.6


def test_encoder_decoder_token_embeddings_start_at_unit_rms():
    torch.manual_seed(0)
    d = 128
    net = TransformerEncoderDecoder(200, num_parts=3, d_model=d, num_layers=1, num_decoder_layers=1,
                                    num_heads=4, d_ff=64)
    for embed in (net.src_embed, net.tgt_embed):
        assert 0.9 < _rms(embed.weight * math.sqrt(d)) < 1.1
    assert 0.015 < net.voice_embed.weight.std().item() < 0.025  # not a token embedding: GPT-2 init


def test_musenet_keeps_gpt2_token_embedding_init():
    torch.manual_seed(0)
    net = MuseNetLM(300, d_model=256, num_layers=1, num_heads=4, d_ff=64, max_len=64)
    assert 0.018 < net.embed.weight.std().item() < 0.022


def _glorot_bound(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6 / (fan_in + fan_out))


def test_t2t_init_dense_kernels_are_glorot_uniform():
    """t2t's transformer initializer is uniform_unit_scaling (variance_scaling fan_avg
    uniform, gain 1); k and v are separate d x d kernels; softmax weights N(0, d**-0.5)."""
    torch.manual_seed(0)
    d, ff = 128, 256  # d_ff = 2 d: the feed-forward kernel must not be split like kv_proj
    net = TransformerLM(300, d_model=d, num_layers=1, num_heads=4, d_ff=ff)
    attn, mlp = net.blocks[0].attn, net.blocks[0].ff
    for w, (fi, fo) in [(attn.q_proj.weight, (d, d)), (attn.kv_proj.weight[:d], (d, d)),
                        (attn.kv_proj.weight[d:], (d, d)), (attn.out_proj.weight, (d, d)),
                        (mlp[0].weight, (d, ff)), (mlp[2].weight, (ff, d))]:
        a = _glorot_bound(fi, fo)
        assert w.abs().max().item() <= a
        assert 0.9 < w.std().item() / (a / math.sqrt(3)) < 1.1  # U(-a, a) has std a / sqrt(3)
    assert torch.all(mlp[0].bias == 0)
    assert 0.9 < net.head.weight.std().item() * math.sqrt(d) < 1.1


def test_gpt2_init_option_and_bad_value():
    torch.manual_seed(0)
    net = TransformerLM(300, d_model=128, num_layers=1, num_heads=4, d_ff=64, init="gpt2")
    for w in (net.embed.weight, net.blocks[0].attn.q_proj.weight, net.head.weight):
        assert 0.018 < w.std().item() < 0.022
    with pytest.raises(ValueError, match="model.net.init='xavier'"):
        TransformerLM(300, d_model=128, num_layers=1, num_heads=4, d_ff=64, init="xavier")
