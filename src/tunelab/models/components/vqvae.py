"""Jukebox's multi-level VQ-VAE (Dhariwal et al. 2020, sec. 2-3) for mono raw audio.

Follows openai/jukebox ``jukebox/vqvae/{vqvae,bottleneck,encdec,resnet}.py`` and
``jukebox/utils/audio_utils.py``. Each level is a separate encoder/decoder of the raw audio
(no hierarchy between levels' latents), quantised by its own EMA codebook with random
restarts of dead codes. Level ``k``'s encoder chains the conv blocks of levels ``0..k``
(Jukebox ``Encoder(levels=k + 1, downs_t[:k + 1])``), so its hop is
``2 ** sum(downs_t[:k + 1])``; level 0 is the finest.

Shapes: audio ``(B, T)`` in [-1, 1]; latents ``(B, emb_width, T // hop)``; codes
``(B, T // hop)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# (n_fft, hop, window): Jukebox DEFAULTS["audio"] multispec_loss_*, kept by small_vqvae at 22.05 kHz
MULTISPEC_RESOLUTIONS: tuple[tuple[int, int, int], ...] = (
    (2048, 240, 1200), (1024, 120, 600), (512, 50, 240))
# Jukebox DefaultSTFTValues: the single-resolution spectral loss and the bandwidth estimate
DEFAULT_STFT: tuple[int, int, int] = (2048, 256, 1536)


# ---------------------------------------------------------------------------- convolutions


class ResConv1DBlock(nn.Module):
    """ReLU -> dilated conv3 -> ReLU -> conv1, residual (Jukebox resnet.py ``ResConv1DBlock``)."""

    def __init__(self, n_in: int, n_state: int, dilation: int = 1) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(), nn.Conv1d(n_in, n_state, 3, 1, dilation, dilation),
            nn.ReLU(), nn.Conv1d(n_state, n_in, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.model(x)


class Resnet1D(nn.Module):
    """``depth`` residual blocks, dilation ``growth ** i`` (Jukebox resnet.py ``Resnet1D``; the
    decoder reverses the order, Jukebox ``vqvae_reverse_decoder_dilation=True``)."""

    def __init__(self, n_in: int, depth: int, m_conv: float = 1.0, dilation_growth_rate: int = 3,
                 reverse_dilation: bool = False) -> None:
        super().__init__()
        blocks = [ResConv1DBlock(n_in, int(m_conv * n_in), dilation_growth_rate ** d) for d in range(depth)]
        self.model = nn.Sequential(*(blocks[::-1] if reverse_dilation else blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class EncoderConvBlock(nn.Module):
    """``down_t`` x [Conv1d stride 2 (kernel 4, pad 1) + Resnet1D], then conv3 to ``out_width``
    (Jukebox encdec.py ``EncoderConvBlock`` with ``stride_t=2``: filter 2 * stride, pad stride // 2)."""

    def __init__(self, in_width: int, out_width: int, down_t: int, width: int, depth: int,
                 m_conv: float = 1.0, dilation_growth_rate: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(down_t):
            blocks.append(nn.Sequential(
                nn.Conv1d(in_width if i == 0 else width, width, 4, 2, 1),
                Resnet1D(width, depth, m_conv, dilation_growth_rate)))
        blocks.append(nn.Conv1d(width, out_width, 3, 1, 1))
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DecoderConvBlock(nn.Module):
    """Mirror of :class:`EncoderConvBlock`: conv3 to ``width``, then ``down_t`` x [Resnet1D
    (reversed dilations) + ConvTranspose1d stride 2] (Jukebox encdec.py ``DecoderConvBock``)."""

    def __init__(self, out_width: int, in_width: int, down_t: int, width: int, depth: int,
                 m_conv: float = 1.0, dilation_growth_rate: int = 3, reverse_dilation: bool = True) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv1d(in_width, width, 3, 1, 1)]
        for i in range(down_t):
            blocks.append(nn.Sequential(
                Resnet1D(width, depth, m_conv, dilation_growth_rate, reverse_dilation),
                nn.ConvTranspose1d(width, out_width if i == down_t - 1 else width, 4, 2, 1)))
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LevelEncoder(nn.Module):
    """Audio (B, 1, T) -> latents (B, emb_width, T // 2**sum(downs_t)): the blocks of every level
    up to this one, chained (Jukebox encdec.py ``Encoder`` built by vqvae.py with ``downs_t[:level+1]``)."""

    def __init__(self, downs_t: Sequence[int], emb_width: int, width: int, depth: int,
                 m_conv: float = 1.0, dilation_growth_rate: int = 3) -> None:
        super().__init__()
        self.level_blocks = nn.ModuleList(
            EncoderConvBlock(1 if i == 0 else emb_width, emb_width, d, width, depth, m_conv,
                             dilation_growth_rate)
            for i, d in enumerate(downs_t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.level_blocks:
            x = block(x)
        return x


class LevelDecoder(nn.Module):
    """Latents (B, emb_width, L) -> audio (B, 1, L * hop): the blocks in reverse, then conv3 to one
    channel (Jukebox encdec.py ``Decoder`` with ``all_levels=False``)."""

    def __init__(self, downs_t: Sequence[int], emb_width: int, width: int, depth: int,
                 m_conv: float = 1.0, dilation_growth_rate: int = 3, reverse_dilation: bool = True) -> None:
        super().__init__()
        self.level_blocks = nn.ModuleList(
            DecoderConvBlock(emb_width, emb_width, d, width, depth, m_conv, dilation_growth_rate,
                             reverse_dilation)
            for d in downs_t)
        self.out = nn.Conv1d(emb_width, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in reversed(self.level_blocks):
            x = block(x)
        return self.out(x)


# ------------------------------------------------------------------------------- codebook


class EMACodebook(nn.Module):
    """Vector quantiser with an EMA-updated codebook (Jukebox bottleneck.py ``BottleneckBlock``).

    In training mode each call (1) initialises the codebook from random encoder outputs on the
    first batch, (2) moves the cluster sums and sizes ``decay`` of the way to their old values and
    ``1 - decay`` to this batch's, (3) sets each code to sum / size, or, if its EMA size is below
    ``threshold``, to a random encoder output of this batch (random restart). Eval mode never
    changes the codebook. Codebook state is in buffers, so it checkpoints (Jukebox keeps the
    sums and sizes as plain attributes and rebuilds them with ``restore_k`` on load).
    """

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, threshold: float = 1.0) -> None:
        super().__init__()
        self.num_codes, self.dim, self.decay, self.threshold = num_codes, dim, decay, threshold
        self.register_buffer("codebook", torch.zeros(num_codes, dim))  # Jukebox: k
        self.register_buffer("cluster_sum", torch.zeros(num_codes, dim))  # k_sum
        self.register_buffer("cluster_size", torch.zeros(num_codes))  # k_elem
        self.register_buffer("initialised", torch.tensor(False))

    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        # fewer vectors than codes: repeat them with a little noise (Jukebox BottleneckBlock._tile)
        n, dim = x.shape
        if n < self.num_codes:
            x = x.repeat((self.num_codes + n - 1) // n, 1)
            x = x + torch.randn_like(x) * (0.01 / math.sqrt(dim))
        return x

    def _random_vectors(self, x: torch.Tensor) -> torch.Tensor:
        y = self._tile(x)
        return y[torch.randperm(y.shape[0], device=x.device)][: self.num_codes]

    @torch.no_grad()
    def init_codebook(self, x: torch.Tensor) -> None:
        """Codes = random rows of ``x`` (N, dim), each with EMA size 1 (Jukebox ``init_k``)."""
        self.codebook.copy_(self._random_vectors(x))
        self.cluster_sum.copy_(self.codebook)
        self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    def quantise(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean) of each row of ``x`` (N, dim)."""
        k = self.codebook.t()
        distance = x.pow(2).sum(-1, keepdim=True) - 2 * x @ k + k.pow(2).sum(0, keepdim=True)
        return distance.argmin(-1)

    def dequantise(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.codebook)

    @torch.no_grad()
    def _update(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        # EMA of per-code sums and counts, then restart the rarely used codes (Jukebox update_k)
        onehot = F.one_hot(codes, self.num_codes).to(x.dtype).t()  # (K, N)
        batch_sum, batch_size = onehot @ x, onehot.sum(-1)
        k_rand = self._random_vectors(x)
        self.cluster_sum.mul_(self.decay).add_(batch_sum, alpha=1 - self.decay)
        self.cluster_size.mul_(self.decay).add_(batch_size, alpha=1 - self.decay)
        alive = (self.cluster_size >= self.threshold)[:, None]
        # torch.where, not Jukebox's usage * sum / size, so a size decayed to 0.0 gives no NaN
        means = self.cluster_sum / self.cluster_size.clamp(min=1e-12)[:, None]
        self.codebook.copy_(torch.where(alive, means, k_rand))
        return batch_size

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents (B, dim, L) -> codes (B, L)."""
        b, _, length = x.shape
        return self.quantise(x.transpose(1, 2).reshape(-1, self.dim)).view(b, length)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, L) -> code vectors (B, dim, L)."""
        return self.dequantise(codes).transpose(1, 2).contiguous()

    def forward(self, x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Latents (B, dim, L) -> codes (B, L), straight-through quantised latents (B, dim, L),
        commitment loss ``mean (x - sg(q))^2`` and usage metrics (perplexity and number of codes
        used in this batch; dead = codes whose EMA size is below the threshold, i.e. restarted)."""
        with torch.autocast(device_type=x.device.type, enabled=False):  # codes in float32 under bf16
            return self._forward(x.float() if x.dtype.itemsize < 4 else x)

    def _forward(self, x: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        b, _, length = x.shape
        flat = x.transpose(1, 2).reshape(-1, self.dim)
        if self.training and not bool(self.initialised):
            self.init_codebook(flat.detach())
        codes = self.quantise(flat.detach())
        q = self.dequantise(codes)
        if self.training:
            counts = self._update(flat.detach(), codes)
        else:
            counts = torch.bincount(codes, minlength=self.num_codes).to(flat.dtype)
        commit = (q.detach() - flat).pow(2).mean()  # Jukebox: ||sg(q) - x||^2 / numel
        q = flat + (q - flat).detach()  # straight-through: d loss / d x = d loss / d q
        if not self.training:
            q = q.detach()  # Jukebox Bottleneck: no gradient through the codes in eval
        with torch.no_grad():
            p = counts / counts.sum()
            metrics = {"perplexity": torch.exp(-(p * torch.log(p + 1e-8)).sum()),
                       "used": (counts >= self.threshold).sum().float(),
                       "dead": (self.cluster_size < self.threshold).sum().float()}
        return codes.view(b, length), q.view(b, length, self.dim).transpose(1, 2), commit, metrics


# --------------------------------------------------------------------------------- losses


def _magnitude(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    # |STFT| with a Hann window, torch's centred reflect padding (Jukebox audio_utils.spec);
    # float32 under bf16 autocast too (cuFFT has no bf16 transform)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float() if x.dtype.itemsize < 4 else x  # calculate_bandwidth measures in float64
        window = torch.hann_window(win, device=x.device, dtype=x.dtype)
        return torch.stft(x, n_fft, hop, win, window=window, return_complex=True).abs()


def _norm(x: torch.Tensor) -> torch.Tensor:
    # L2 norm of each batch row (Jukebox audio_utils.norm)
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=-1)


def spectral_loss(x: torch.Tensor, y: torch.Tensor,
                  resolution: tuple[int, int, int] = DEFAULT_STFT) -> torch.Tensor:
    """Per-row ``|| |STFT x| - |STFT y| ||_2`` of audio (B, T) at one (n_fft, hop, window)
    (Jukebox audio_utils.spectral_loss; the caller averages and divides by the bandwidth)."""
    return _norm(_magnitude(x, *resolution) - _magnitude(y, *resolution))


def multi_resolution_spectral_loss(x: torch.Tensor, y: torch.Tensor,
                                   resolutions: Sequence[Sequence[int]] = MULTISPEC_RESOLUTIONS
                                   ) -> torch.Tensor:
    """Per-row :func:`spectral_loss` averaged over ``resolutions`` (Jukebox
    audio_utils.multispectral_loss)."""
    losses = [spectral_loss(x, y, (int(n), int(h), int(w))) for n, h, w in resolutions]
    return sum(losses) / len(losses)


def calculate_bandwidth(audio: torch.Tensor) -> dict[str, float]:
    """Loss normalisers of audio (B, T) (Jukebox audio_utils.calculate_bandwidth, without l1):
    ``l2`` = variance of the samples, ``spec`` = mean per-row norm of the default |STFT|."""
    audio = audio.detach().double()
    return {"l2": float(audio.pow(2).mean() - audio.mean().pow(2)),
            "spec": float(_norm(_magnitude(audio, *DEFAULT_STFT)).mean())}


# ---------------------------------------------------------------------------------- model


class JukeboxVQVAE(nn.Module):
    """Jukebox's VQ-VAE: one encoder, codebook and decoder per level (Jukebox vqvae.py ``VQVAE``).

    Args:
        sample_rate: Audio rate in Hz (metadata; Jukebox small_vqvae: 22050).
        downs_t: Stride-2 downsamplings added by each level, as Jukebox's ``downs_t`` (not
            cumulative): level ``k``'s hop is ``2 ** sum(downs_t[:k + 1])``. Default ``[5, 3]``
            (small_vqvae) gives hops 32 and 256.
        codebook_size: Codes per level (Jukebox ``l_bins``).
        emb_width: Latent / code dimension.
        width, depth, m_conv, dilation_growth_rate: Conv stack (Jukebox ``vqvae_conv_block``).
        multipliers: Per-level factor on width and depth (Jukebox ``hvqvae_multipliers``); None = 1s.
        reverse_decoder_dilation: Decoder residual stacks run dilations high to low.
        commit, spectral, multispectral: Loss weights; waveform L2 has weight 1.
        decay, threshold: Codebook EMA decay (``l_mu``) and restart threshold (``revival_threshold``).
        multispec_resolutions: ``[[n_fft, hop, window], ...]`` of the multispectral loss.
        bandwidth_l2, bandwidth_spec: Loss normalisers (:func:`calculate_bandwidth` of the
            training data). None: estimated from the first batch the model sees and kept in buffers.
    """

    def __init__(self, sample_rate: int = 22050, downs_t: Sequence[int] = (5, 3), codebook_size: int = 1024,
                 emb_width: int = 64, width: int = 32, depth: int = 4, m_conv: float = 1.0,
                 dilation_growth_rate: int = 3, multipliers: Sequence[int] | None = None,
                 reverse_decoder_dilation: bool = True, commit: float = 0.02, spectral: float = 0.0,
                 multispectral: float = 1.0, decay: float = 0.99, threshold: float = 1.0,
                 multispec_resolutions: Sequence[Sequence[int]] = MULTISPEC_RESOLUTIONS,
                 bandwidth_l2: float | None = None, bandwidth_spec: float | None = None) -> None:
        super().__init__()
        downs_t = [int(d) for d in downs_t]
        if not downs_t or min(downs_t) < 1:
            raise ValueError(f"downs_t={downs_t}: need one positive number of downsamplings per level")
        multipliers = [1] * len(downs_t) if multipliers is None else [int(m) for m in multipliers]
        if len(multipliers) != len(downs_t):
            raise ValueError(f"multipliers={multipliers}: need one per level ({len(downs_t)})")
        self.sample_rate, self.downs_t, self.levels = sample_rate, downs_t, len(downs_t)
        self.codebook_size, self.emb_width = codebook_size, emb_width
        self.commit, self.spectral, self.multispectral = commit, spectral, multispectral
        self.multispec_resolutions = [tuple(int(v) for v in r) for r in multispec_resolutions]
        conv = {"m_conv": m_conv, "dilation_growth_rate": dilation_growth_rate}
        self.encoders = nn.ModuleList(
            LevelEncoder(downs_t[: k + 1], emb_width, width * m, depth * m, **conv)
            for k, m in enumerate(multipliers))
        self.decoders = nn.ModuleList(
            LevelDecoder(downs_t[: k + 1], emb_width, width * m, depth * m, **conv,
                         reverse_dilation=reverse_decoder_dilation)
            for k, m in enumerate(multipliers))
        self.codebooks = nn.ModuleList(EMACodebook(codebook_size, emb_width, decay, threshold)
                                       for _ in downs_t)
        # NaN = not yet estimated (see bandwidth_l2 / bandwidth_spec above)
        for name, value in (("bandwidth_l2", bandwidth_l2), ("bandwidth_spec", bandwidth_spec)):
            self.register_buffer(name, torch.tensor(math.nan if value is None else float(value)))

    @property
    def hop_lengths(self) -> list[int]:
        """Audio samples per code at each level, finest first (Jukebox ``hop_lengths``)."""
        return [2 ** sum(self.downs_t[: k + 1]) for k in range(self.levels)]

    def _check(self, audio: torch.Tensor) -> None:
        if audio.dim() != 2:
            raise ValueError(f"audio must be (batch, samples); got shape {tuple(audio.shape)}")
        top = self.hop_lengths[-1]
        if audio.shape[-1] == 0 or audio.shape[-1] % top:
            raise ValueError(f"audio length {audio.shape[-1]} must be a positive multiple of the top "
                             f"level's hop {top} (hops {self.hop_lengths})")

    def encode(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """Audio (B, T) -> codes of every level, finest first: (B, T // hop) each."""
        self._check(audio)
        x = audio[:, None].float()
        return [cb.encode(enc(x)) for enc, cb in zip(self.encoders, self.codebooks, strict=True)]

    def decode(self, codes: torch.Tensor, level: int) -> torch.Tensor:
        """Codes (B, L) of ``level`` -> audio (B, L * hop) from that level's decoder alone."""
        return self.decoders[level](self.codebooks[level].decode(codes))[:, 0]

    @torch.no_grad()
    def _maybe_estimate_bandwidth(self, audio: torch.Tensor) -> None:
        if torch.isnan(self.bandwidth_l2) or torch.isnan(self.bandwidth_spec):
            bw = calculate_bandwidth(audio)
            if torch.isnan(self.bandwidth_l2):
                self.bandwidth_l2.fill_(max(bw["l2"], 1e-8))  # guard a silent first batch
            if torch.isnan(self.bandwidth_spec):
                self.bandwidth_spec.fill_(max(bw["spec"], 1e-8))

    def forward(self, audio: torch.Tensor
                ) -> tuple[list[torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        """Audio (B, T) -> (reconstruction (B, T) of each level, loss, metrics).

        Loss (Jukebox ``VQVAE.forward``, ``loss_fn='l2'``): summed over levels,
        ``mse / bandwidth_l2 + spectral * spec / bw_spec + multispectral * multispec / bw_spec
        + commit * commitment``. Metrics per level ``k``: ``recons_l{k}``, ``spectral_l{k}`` (the
        multispectral loss), ``commit_l{k}``, ``perplexity_l{k}``, ``used_l{k}``, ``dead_l{k}``.
        """
        self._check(audio)
        self._maybe_estimate_bandwidth(audio)
        x = audio.float()
        recons: list[torch.Tensor] = []
        loss = x.new_zeros(())
        metrics: dict[str, torch.Tensor] = {}
        for k in range(self.levels):
            _, q, commit, usage = self.codebooks[k](self.encoders[k](x[:, None]))
            out = self.decoders[k](q)[:, 0]
            recons.append(out)
            rec = (out - x).pow(2).mean() / self.bandwidth_l2
            multispec = multi_resolution_spectral_loss(x, out, self.multispec_resolutions).mean()
            multispec = multispec / self.bandwidth_spec
            loss = loss + rec + self.multispectral * multispec + self.commit * commit
            if self.spectral:  # weight 0 in every Jukebox config: skip the extra STFTs
                loss = loss + self.spectral * spectral_loss(x, out).mean() / self.bandwidth_spec
            metrics.update({f"recons_l{k}": rec, f"spectral_l{k}": multispec, f"commit_l{k}": commit,
                            **{f"{name}_l{k}": v for name, v in usage.items()}})
        return recons, loss, {name: v.detach() for name, v in metrics.items()}
