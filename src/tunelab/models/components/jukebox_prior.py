"""Jukebox's priors (Dhariwal et al. 2020, sec. 3): autoregressive Transformers over one
VQ-VAE level's codes. The top-level prior is conditioned on a style (Jukebox: artist and
genre; here the corpus); an upsampler is also conditioned on the codes of the level above,
embedded, upsampled to this level's rate by a transposed convolution and smoothed by a
dilated convolution stack, then added to every input position (Jukebox's ``Conditioner``).

The Transformer is tunelab's :class:`TransformerLM` (relative attention, KV cache), so the
priors sample with the same cached generation as the symbolic models.
"""

from __future__ import annotations

import torch
from torch import nn

from tunelab.models.components.transformer import TransformerLM


class Upsampler(nn.Module):
    """Codes of the level above (B, L) -> embeddings at this level's rate (B, L * factor, d)."""

    def __init__(self, codebook_size: int, d_model: int, factor: int, depth: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.embed = nn.Embedding(codebook_size, d_model)
        self.up = nn.ConvTranspose1d(d_model, d_model, kernel_size=factor, stride=factor)
        # dilated residual smoothing across the repeated positions (Jukebox: Resnet1D, growth 3)
        self.res = nn.ModuleList(nn.Sequential(nn.GELU(), nn.Conv1d(d_model, d_model, 3, padding=3**i,
                                                                   dilation=3**i))
                                 for i in range(depth))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.up(self.embed(codes).transpose(1, 2))
        for block in self.res:
            x = x + block(x)
        return self.norm(x.transpose(1, 2))


class CodePrior(nn.Module):
    """Next-code model of one level: logits (B, L, codebook_size) from shifted codes, the
    style of each sequence and, for an upsampler, the aligned codes of the level above."""

    token_inputs = True

    def __init__(self, codebook_size: int, num_styles: int, d_model: int = 128, num_layers: int = 3,
                 num_heads: int = 4, d_ff: int = 512, dropout: float = 0.1,
                 max_relative_position: int = 256, cond_codebook_size: int | None = None,
                 upsample: int = 1) -> None:
        super().__init__()
        self.num_classes, self.num_styles, self.upsample = codebook_size, num_styles, upsample
        self.lm = TransformerLM(codebook_size, d_model, num_layers, num_heads, d_ff, dropout,
                                position="relative", max_relative_position=max_relative_position)
        self.style = nn.Embedding(num_styles, d_model)
        self.conditioner = (Upsampler(cond_codebook_size, d_model, upsample)
                            if cond_codebook_size else None)

    @property
    def bos(self) -> int:
        return self.lm.bos

    def new_cache(self):
        return self.lm.new_cache()

    def forward(self, inputs: torch.Tensor, style: torch.Tensor, cond: torch.Tensor | None = None,
                cache=None) -> tuple[torch.Tensor, object]:
        """``inputs`` (B, L): BOS then codes; ``style`` (B,); ``cond`` (B, L_up) codes of the level
        above covering this sequence from its first position (an upsampler only). With ``cache``
        ``inputs`` are the new positions only, as :meth:`TransformerLM.forward`."""
        start = cache[0][0].length if cache is not None else 0
        extra = self.style(style)[:, None, :].expand(-1, inputs.shape[1], -1)
        if self.conditioner is not None:
            if cond is None:
                raise ValueError("an upsampler prior needs the codes of the level above (cond)")
            up = self.conditioner(cond)
            if up.shape[1] < start + inputs.shape[1]:
                raise ValueError(f"cond covers {up.shape[1]} positions, the sequence needs "
                                 f"{start + inputs.shape[1]}")
            extra = extra + up[:, start:start + inputs.shape[1]]
        return self.lm(inputs, cache, extra_embedding=extra)
