"""MuseNet-style network (OpenAI 2019): one dense causal Transformer over multi-instrument
event tokens, with learned position embeddings plus MuseNet's structural embeddings --
where the next event falls in the bar and in the beat, and how much time has elapsed in
the piece. Attention, blocks and the KV cache are the Music Transformer's (dense, i.e.
``position="absolute"`` attention through PyTorch's fused kernel).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tunelab.models.components.attention import KVCache
from tunelab.models.components.transformer import TransformerLM


class MuseNetCache(list):
    """Per-layer key/value caches plus the running time (steps) of each sequence."""

    def __init__(self, layers: int) -> None:
        super().__init__((KVCache(), KVCache()) for _ in range(layers))
        self.time: torch.Tensor | None = None


class MuseNetLM(TransformerLM):
    """Dense Transformer LM whose input embedding adds learned token positions and the
    structural embeddings of the time each token leads to.

    Args:
        num_classes: vocabulary size of the MuseNet encoding.
        max_len: context length in tokens (learned positions; generation cannot exceed it).
        steps_per_bar, steps_per_beat: grid of the structural embeddings (4/4 in 16ths).
        max_beats: elapsed time is embedded in beats, clipped here.
        gradient_checkpointing: recompute block activations in backward (long contexts).
        Other arguments as :class:`TransformerLM`.
    """

    def __init__(self, num_classes: int, d_model: int = 256, num_layers: int = 4, num_heads: int = 8,
                 d_ff: int = 1024, dropout: float = 0.1, max_len: int = 512, steps_per_bar: int = 16,
                 steps_per_beat: int = 4, max_beats: int = 1024,
                 gradient_checkpointing: bool = False) -> None:
        super().__init__(num_classes, d_model, num_layers, num_heads, d_ff, dropout, position="absolute",
                         init="gpt2")  # OpenAI's GPT-2 init
        self.max_len, self.steps_per_bar, self.steps_per_beat = max_len, steps_per_bar, steps_per_beat
        self.max_beats, self.gradient_checkpointing = max_beats, gradient_checkpointing
        self.pos_embed = nn.Embedding(max_len, d_model)
        self.bar_embed = nn.Embedding(steps_per_bar, d_model)
        self.beat_embed = nn.Embedding(steps_per_beat, d_model)
        self.elapsed_embed = nn.Embedding(max_beats, d_model)
        for emb in (self.pos_embed, self.bar_embed, self.beat_embed, self.elapsed_embed):
            nn.init.normal_(emb.weight, std=0.02)
        # Steps each input id advances time (wait tokens); set from the encoding, saved with
        # the weights. The start token (id num_classes) advances nothing.
        self.register_buffer("wait_steps", torch.zeros(num_classes + 1, dtype=torch.long))

    def set_wait_steps(self, wait_steps) -> None:
        steps = torch.as_tensor(wait_steps, dtype=torch.long)
        if steps.shape != (self.num_classes,):
            raise ValueError(f"wait_steps has shape {tuple(steps.shape)}, expected ({self.num_classes},)")
        self.wait_steps[:-1] = steps

    def new_cache(self) -> MuseNetCache:
        return MuseNetCache(len(self.blocks))

    def structure(self, inputs: torch.Tensor, start_time: torch.Tensor | None = None
                  ) -> dict[str, torch.Tensor]:
        """For each input token, the time (steps) of the event it predicts -- the time after
        all waits up to and including it -- and that time's bar position, beat position and
        elapsed beats."""
        time = self.wait_steps[inputs].cumsum(1)
        if start_time is not None:
            time = time + start_time[:, None]
        return {"time": time, "bar": time % self.steps_per_bar, "beat": time % self.steps_per_beat,
                "elapsed": (time // self.steps_per_beat).clamp(max=self.max_beats - 1)}

    def forward(self, inputs: torch.Tensor, cache: MuseNetCache | None = None,
                extra_embedding: torch.Tensor | None = None) -> tuple[torch.Tensor, MuseNetCache | None]:
        start = cache[0][0].length if cache is not None else 0
        if start + inputs.shape[1] > self.max_len:
            raise ValueError(f"{start + inputs.shape[1]} tokens exceed the context of {self.max_len} "
                             "(model.net.max_len)")
        s = self.structure(inputs, None if cache is None else cache.time)
        if cache is not None:
            cache.time = s["time"][:, -1]
        positions = torch.arange(start, start + inputs.shape[1], device=inputs.device)
        x = (self.embed(inputs) * math.sqrt(self.d_model) + self.pos_embed(positions)
             + self.bar_embed(s["bar"]) + self.beat_embed(s["beat"]) + self.elapsed_embed(s["elapsed"]))
        if extra_embedding is not None:
            x = x + extra_embedding
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            if self.gradient_checkpointing and self.training and cache is None:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x, cache=None if cache is None else cache[i])
        return self.head(self.norm(x)), cache
