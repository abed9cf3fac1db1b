"""Pre-norm Transformer networks over event tokens: a decoder-only language model (Music
Transformer, its vanilla baseline, later MuseNet) and an encoder-decoder (Music
Transformer's melody-conditioned accompaniment). Attention lives in ``attention.py``."""

from __future__ import annotations

import math

import torch
from torch import nn

from tunelab.models.components.attention import KVCache, MultiHeadAttention
from tunelab.models.components.tf_init import glorot_uniform_

POSITIONS = ("relative", "absolute")


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Vaswani et al. (2017) timing signal for integer ``positions`` (L,) -> (L, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / max(half - 1, 1))
    angles = positions.float()[:, None] * freqs[None, :]
    out = torch.cat([angles.sin(), angles.cos()], -1)
    return nn.functional.pad(out, (0, dim - 2 * half))


class TransformerBlock(nn.Module):
    """Pre-norm block (tensor2tensor's "n" preprocess, "da" postprocess): self-attention,
    optional cross-attention to an encoder output, position-wise feed-forward."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float, *,
                 causal: bool, relative: bool, max_relative_position: int,
                 block_size: int | None = None, cross_attention: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, dropout, causal=causal, relative=relative,
                                       max_relative_position=max_relative_position,
                                       block_size=block_size)
        self.cross = None
        if cross_attention:
            self.norm_cross = nn.LayerNorm(d_model)
            self.cross = MultiHeadAttention(d_model, num_heads, dropout, cross=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None,
                cache: tuple[KVCache, KVCache] | None = None,
                key_mask: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        self_cache, cross_cache = cache if cache is not None else (None, None)
        x = x + self.drop(self.attn(self.norm1(x), cache=self_cache, key_mask=key_mask))
        if self.cross is not None:
            x = x + self.drop(self.cross(self.norm_cross(x), memory=memory, cache=cross_cache,
                                         key_mask=memory_mask))
        return x + self.drop(self.ff(self.norm2(x)))


def _blocks(num_layers: int, d_model: int, num_heads: int, d_ff: int, dropout: float,
            **attention) -> nn.ModuleList:
    return nn.ModuleList(TransformerBlock(d_model, num_heads, d_ff, dropout, **attention)
                         for _ in range(num_layers))


INITS = ("t2t", "gpt2")


def _init_weights(module: nn.Module) -> None:
    """GPT-2 style: N(0, 0.02) for linear and embedding weights, zero biases."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


def t2t_init_(net: nn.Module, token_embeddings: list[nn.Embedding], head: nn.Linear) -> None:
    """tensor2tensor's transformer: every dense kernel glorot-uniform (``initializer=
    uniform_unit_scaling``, gain 1: variance_scaling fan_avg uniform), zero biases, and the
    symbol modality's token and softmax weights N(0, d**-0.5) (times sqrt(d) on the way in),
    so token embeddings have RMS ~1 next to the sinusoid positions (RMS ~0.7)."""
    # t2t utils/optimize.py get_variable_initializer; layers/modalities.py get_weights
    for name, m in net.named_modules():
        if isinstance(m, nn.Linear):
            # kv_proj holds t2t's separate k and v kernels side by side: fans of each alone
            parts = 2 if name.endswith("kv_proj") else 1
            for block in m.weight.data.chunk(parts):
                glorot_uniform_(block, m.in_features, block.shape[0])
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for layer in (*token_embeddings, head):
        nn.init.normal_(layer.weight, std=layer.weight.shape[1] ** -0.5)


def _check_init(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"model.net.init={init!r}; choose one of {', '.join(INITS)}")


def _check_position(position: str) -> None:
    if position not in POSITIONS:
        raise ValueError(f"model.net.position={position!r}; choose one of {', '.join(POSITIONS)}")


class TransformerLM(nn.Module):
    """Decoder-only Transformer language model over ``num_classes`` event tokens.

    Input id ``num_classes`` is a start-of-sequence token (:attr:`bos`), so the first event
    of a piece is predicted too. ``position="relative"`` is Music Transformer (global, or
    local with ``block_size``); ``"absolute"`` adds sinusoidal positions (the vanilla
    Transformer baseline of the paper).

    ``init="t2t"`` starts the weights as tensor2tensor's transformer (:func:`t2t_init_`);
    ``"gpt2"`` as GPT-2 (N(0, 0.02) everywhere, OpenAI's MuseNet).
    """

    token_inputs = True

    def __init__(self, num_classes: int, d_model: int = 256, num_layers: int = 4, num_heads: int = 8,
                 d_ff: int = 1024, dropout: float = 0.1, position: str = "relative",
                 max_relative_position: int = 512, block_size: int | None = None,
                 init: str = "t2t") -> None:
        super().__init__()
        _check_position(position)
        _check_init(init)
        self.num_classes, self.position, self.d_model = num_classes, position, d_model
        self.embed = nn.Embedding(num_classes + 1, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = _blocks(num_layers, d_model, num_heads, d_ff, dropout, causal=True,
                              relative=position == "relative",
                              max_relative_position=max_relative_position, block_size=block_size)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        self.apply(_init_weights)
        if init == "t2t":
            t2t_init_(self, [self.embed], self.head)

    @property
    def bos(self) -> int:
        return self.num_classes

    def new_cache(self) -> list[tuple[KVCache, KVCache]]:
        return [(KVCache(), KVCache()) for _ in self.blocks]

    def embed_tokens(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token embeddings (scaled by sqrt(d) as in Vaswani et al.) plus, for the baseline,
        sinusoidal positions ``start ..``."""
        x = self.embed(tokens) * math.sqrt(self.d_model)
        if self.position == "absolute":
            x = x + sinusoid(torch.arange(start, start + tokens.shape[1], device=tokens.device), self.d_model)
        return x

    def forward(self, inputs: torch.Tensor, cache: list[tuple[KVCache, KVCache]] | None = None,
                extra_embedding: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[tuple[KVCache, KVCache]] | None]:
        """``inputs`` (B, L) ids -> logits (B, L, num_classes). With ``cache`` (from
        :meth:`new_cache`, filled by earlier calls) ``inputs`` are the new positions only.
        ``extra_embedding`` (B, L, d_model) is added to the input (structural embeddings)."""
        start = cache[0][0].length if cache is not None else 0
        x = self.embed_tokens(inputs, start)
        if extra_embedding is not None:
            x = x + extra_embedding
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cache=None if cache is None else cache[i])
        return self.head(self.norm(x)), cache


class TransformerEncoderDecoder(nn.Module):
    """Melody-conditioned accompaniment (Music Transformer sec. 5): a bidirectional
    relative-attention encoder reads the melody, one token per 16th step; a causal
    relative-attention decoder writes the ``num_parts`` accompaniment voices step-major
    (``t0: p1 p2 .., t1: ..``) and cross-attends to the melody.

    Self-attention is relative, so both sides also get a sinusoidal *time-step* signal
    (decoder token k is at step ``k // num_parts``) and the decoder a learned voice
    embedding: that is what lets cross-attention line each voice up with its melody step.
    """

    token_inputs = True

    def __init__(self, num_classes: int, num_parts: int, d_model: int = 256, num_layers: int = 3,
                 num_decoder_layers: int = 3, num_heads: int = 8, d_ff: int = 1024,
                 dropout: float = 0.1, max_relative_position: int = 512) -> None:
        super().__init__()
        self.num_classes, self.num_parts, self.d_model = num_classes, num_parts, d_model
        self.src_embed = nn.Embedding(num_classes, d_model)
        self.tgt_embed = nn.Embedding(num_classes + 1, d_model)
        self.voice_embed = nn.Embedding(num_parts, d_model)
        self.drop = nn.Dropout(dropout)
        self.encoder = _blocks(num_layers, d_model, num_heads, d_ff, dropout, causal=False,
                               relative=True, max_relative_position=max_relative_position)
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = _blocks(num_decoder_layers, d_model, num_heads, d_ff, dropout, causal=True,
                               relative=True, max_relative_position=max_relative_position,
                               cross_attention=True)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        self.apply(_init_weights)
        t2t_init_(self, [self.src_embed, self.tgt_embed], self.head)

    @property
    def bos(self) -> int:
        return self.num_classes

    def new_cache(self) -> list[tuple[KVCache, KVCache]]:
        return [(KVCache(), KVCache()) for _ in self.decoder]

    def encode(self, source: torch.Tensor, source_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Melody ids (B, S) -> memory (B, S, d_model); ``source_mask`` True at real steps."""
        steps = torch.arange(source.shape[1], device=source.device)
        x = self.drop(self.src_embed(source) * math.sqrt(self.d_model) + sinusoid(steps, self.d_model))
        for block in self.encoder:
            x = block(x, key_mask=source_mask)
        return self.encoder_norm(x)

    def decode(self, inputs: torch.Tensor, memory: torch.Tensor,
               cache: list[tuple[KVCache, KVCache]] | None = None,
               source_mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, list[tuple[KVCache, KVCache]] | None]:
        """Accompaniment ids (B, L) (BOS first) -> logits (B, L, num_classes)."""
        start = cache[0][0].length if cache is not None else 0
        k = torch.arange(start, start + inputs.shape[1], device=inputs.device)
        x = (self.tgt_embed(inputs) * math.sqrt(self.d_model)
             + sinusoid(k // self.num_parts, self.d_model) + self.voice_embed(k % self.num_parts))
        x = self.drop(x)
        for i, block in enumerate(self.decoder):
            x = block(x, memory=memory, cache=None if cache is None else cache[i], memory_mask=source_mask)
        return self.head(self.norm(x)), cache

    def forward(self, inputs: torch.Tensor, source: torch.Tensor,
                source_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.decode(inputs, self.encode(source, source_mask), source_mask=source_mask)
