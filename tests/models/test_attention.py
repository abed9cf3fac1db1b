"""Relative attention (Music Transformer skewing) against Shaw et al.'s naive computation,
causality, block-local windows, and cached decoding against full recompute."""

import math

import pytest
import torch
import torch.nn.functional as F

from tunelab.models.components.attention import (
    KVCache,
    MultiHeadAttention,
    relative_logits_bidirectional,
    relative_logits_causal,
    relative_logits_gather,
    relative_logits_naive,
)
from tunelab.models.components.sampling import filter_logits, generate
from tunelab.models.components.transformer import TransformerEncoderDecoder, TransformerLM


@pytest.mark.parametrize("L", [1, 2, 7, 33, 128])
@pytest.mark.parametrize("M", [4, 128, 200])  # shorter (zero beyond), exact, longer than L
def test_skewed_relative_logits_equal_naive(L, M):
    g = torch.Generator().manual_seed(L * 1000 + M)
    q = torch.randn(2, 3, L, 16, generator=g, dtype=torch.float64)
    emb = torch.randn(3, M, 16, generator=g, dtype=torch.float64)
    lower = torch.tril(torch.ones(L, L, dtype=torch.bool))
    skewed, naive = relative_logits_causal(q, emb), relative_logits_naive(q, emb)
    assert torch.allclose(skewed[..., lower], naive[..., lower])
    gathered = relative_logits_gather(q, emb, torch.arange(L), torch.arange(L))
    assert torch.allclose(gathered[..., lower], naive[..., lower])
    emb2 = torch.randn(3, 2 * M - 1, 16, generator=g, dtype=torch.float64)
    naive2 = relative_logits_naive(q, emb2, causal=False)
    assert torch.allclose(relative_logits_bidirectional(q, emb2), naive2)


def test_skewed_logit_is_query_dot_distance_embedding():
    """One entry by hand: query 5 against key 2 uses the embedding of distance 3."""
    q, emb = torch.randn(1, 1, 8, 4), torch.randn(1, 10, 4)
    rel = relative_logits_causal(q, emb)
    assert torch.allclose(rel[0, 0, 5, 2], q[0, 0, 5] @ emb[0, 10 - 1 - 3])


def _attention(relative: bool, block: int | None = None, causal: bool = True) -> MultiHeadAttention:
    torch.manual_seed(0)
    return MultiHeadAttention(32, 4, causal=causal, relative=relative, max_relative_position=16,
                              block_size=block).double().eval()


def _reference(attn: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention written out with the naive relative logits and an explicit mask."""
    q = attn._heads(attn.q_proj(x))
    k, v = (attn._heads(t) for t in attn.kv_proj(x).chunk(2, -1))
    logits = q @ k.transpose(-1, -2)
    if attn.relative:
        logits = logits + relative_logits_naive(q, attn.rel_emb, causal=attn.causal)
    L = x.shape[1]
    pos = torch.arange(L)
    logits = logits / math.sqrt(attn.head_dim)
    if attn.causal:
        logits = logits.masked_fill(~attn._mask(pos, pos), float("-inf"))
    y = logits.softmax(-1) @ v
    return attn.out_proj(y.transpose(1, 2).reshape(x.shape[0], L, -1))


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("block", [None, 4, 5])
def test_attention_matches_reference(relative, block):
    attn = _attention(relative, block)
    x = torch.randn(2, 23, 32, dtype=torch.float64)
    assert torch.allclose(attn(x), _reference(attn, x), atol=1e-10)


def test_bidirectional_relative_attention_matches_reference():
    attn = _attention(True, causal=False)
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    assert torch.allclose(attn(x), _reference(attn, x), atol=1e-10)


def test_block_local_window_is_previous_and_own_block():
    attn = _attention(False, block=4)
    mask = attn._mask(torch.arange(12), torch.arange(12))
    assert mask[9].tolist() == [False] * 4 + [True] * 6 + [False] * 2  # block 2 sees blocks 1, 2
    assert mask[3].tolist() == [True] * 4 + [False] * 8


@pytest.mark.parametrize("position,block", [("relative", None), ("relative", 8), ("absolute", None)])
def test_no_information_flows_from_the_future(position, block):
    torch.manual_seed(0)
    net = TransformerLM(20, d_model=32, num_layers=2, num_heads=4, d_ff=64, dropout=0.0,
                        position=position, max_relative_position=32, block_size=block).eval()
    a = torch.randint(0, 20, (1, 30))
    b = a.clone()
    b[0, 17:] = (b[0, 17:] + 1) % 20  # change every token from position 17 on
    la, lb = net(a)[0], net(b)[0]
    assert torch.allclose(la[0, :17], lb[0, :17], atol=1e-6)
    assert not torch.allclose(la[0, 17:], lb[0, 17:])


@pytest.mark.parametrize("position,block", [("relative", None), ("relative", 8), ("absolute", None)])
def test_cached_decoding_equals_full_recompute(position, block):
    torch.manual_seed(0)
    net = TransformerLM(24, d_model=32, num_layers=2, num_heads=4, d_ff=64, dropout=0.0,
                        position=position, max_relative_position=16, block_size=block).eval()
    prompt = torch.tensor([[net.bos, 3, 5, 7], [net.bos, 1, 2, 3]])
    runs = [generate(net, prompt, 40, new_cache=cache, generator=torch.Generator().manual_seed(7))
            for cache in (net.new_cache, None)]
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0][:, :4], prompt)  # the primer is kept
    # and the logits agree position by position
    full = net(runs[0])[0]
    cache = net.new_cache()
    stepwise = torch.cat([net(runs[0][:, :4], cache)[0]] + [net(runs[0][:, t:t + 1], cache)[0]
                                                           for t in range(4, runs[0].shape[1])], 1)
    assert torch.allclose(full, stepwise, atol=1e-5)


def test_encoder_decoder_cache_and_padding():
    torch.manual_seed(0)
    net = TransformerEncoderDecoder(12, num_parts=3, d_model=32, num_layers=1, num_decoder_layers=2,
                                    num_heads=4, d_ff=64, dropout=0.0, max_relative_position=16).eval()
    src = torch.randint(0, 12, (1, 6))
    memory = net.encode(src)
    prompt = torch.tensor([[net.bos]])
    runs = [generate(lambda t, c: net.decode(t, memory, c), prompt, 18, new_cache=nc,
                     generator=torch.Generator().manual_seed(1)) for nc in (net.new_cache, None)]
    assert torch.equal(runs[0], runs[1])
    # padding a source with masked junk changes nothing
    padded = torch.cat([src, torch.randint(0, 12, (1, 4))], 1)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    tgt = runs[0][:, :-1]
    assert torch.allclose(net(tgt, src)[0], net(tgt, padded, mask)[0], atol=1e-5)


def test_kv_cache_grows_by_new_positions():
    attn = _attention(True)
    cache = KVCache()
    attn(torch.randn(1, 5, 32, dtype=torch.float64), cache=cache)
    attn(torch.randn(1, 1, 32, dtype=torch.float64), cache=cache)
    assert cache.length == 6


def test_filter_logits_top_k_top_p_temperature():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, top_p=0.8))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 + 0.3 reaches 0.8
    assert (~torch.isinf(filter_logits(logits, top_p=0.81))).sum() == 3
    hot = filter_logits(logits, temperature=2.0).softmax(-1)
    assert torch.allclose(hot, F.softmax(logits / 2, -1))
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        filter_logits(logits, temperature=0)
