"""Objective metrics of raw audio (Jukebox): spectral distances between a reference and
its reconstruction, pitch-class (chroma) statistics, and how much of a VQ codebook is used.

Plain numpy in float64, no randomness: the same inputs give the same numbers everywhere.
"""

from __future__ import annotations

import numpy as np

A4_HZ = 440.0
A4_MIDI = 69
CHROMA_LOW_HZ, CHROMA_HIGH_HZ = 27.5, 4186.0  # A0 .. C8, the piano's range
LOG_EPS = 1e-7  # Parallel WaveGAN clamps |S|^2 at 1e-7 before the log; we add eps to |S| instead


def stft_magnitude(x: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """|STFT| of ``x`` (..., samples) -> (..., frames, n_fft // 2 + 1), as torch.stft with
    a periodic Hann window of n_fft samples, center=True and reflect padding (zeros when
    the signal is too short to reflect)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"stft: need samples along the last axis, got shape {x.shape}")
    pad = n_fft // 2
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    x = np.pad(x, widths, mode="reflect" if x.shape[-1] > pad else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop, :]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    return np.abs(np.fft.rfft(frames * window, axis=-1))


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = np.asarray(reference, dtype=np.float64), np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"reference {ref.shape} and estimate {est.shape} differ in shape; "
                         "cut both to one length")
    return ref, est


def _sc(s_ref: np.ndarray, s_est: np.ndarray) -> float:
    num, den = np.linalg.norm(s_ref - s_est), np.linalg.norm(s_ref)
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(num / den)


def spectral_convergence(reference: np.ndarray, estimate: np.ndarray, n_fft: int = 2048,
                         hop: int = 512) -> float:
    """‖|S_ref| − |S_est|‖_F / ‖|S_ref|‖_F over all frames (and batch rows): 0 for a perfect
    estimate, 1 for silence. A silent reference gives 0 against silence, else inf."""
    # Arik et al. 2019 (Fast spectrogram inversion, eq. 6); Parallel WaveGAN's SpectralConvergenceLoss
    ref, est = _pair(reference, estimate)
    return _sc(stft_magnitude(ref, n_fft, hop), stft_magnitude(est, n_fft, hop))


def multi_resolution_stft_distance(reference: np.ndarray, estimate: np.ndarray,
                                   resolutions: tuple[tuple[int, int], ...] = ((2048, 512), (1024, 256),
                                                                              (512, 128)),
                                   eps: float = LOG_EPS) -> float:
    """Mean over (n_fft, hop) resolutions of spectral convergence + mean |log|S_ref| − log|S_est||."""
    # Yamamoto et al. 2020 (Parallel WaveGAN), eq. 4-6: multi-resolution STFT loss, window = n_fft here
    ref, est = _pair(reference, estimate)
    total = 0.0
    for n_fft, hop in resolutions:
        s_ref, s_est = stft_magnitude(ref, n_fft, hop), stft_magnitude(est, n_fft, hop)
        log_mag = float(np.mean(np.abs(np.log(s_ref + eps) - np.log(s_est + eps))))
        total += _sc(s_ref, s_est) + log_mag
    return total / len(resolutions)


def chroma_histogram(audio: np.ndarray, sample_rate: int, n_fft: int = 4096, hop: int = 1024) -> np.ndarray:
    """Share of STFT power per pitch class (0 = C .. 11 = B) of the bins between A0 and C8,
    each bin given to its nearest MIDI pitch (69 + 12 log2(f / 440)); uniform if silent.

    Bins are sample_rate / n_fft apart (5.4 Hz at 22050 Hz), finer than a semitone only
    above about 90 Hz: the lowest octaves' classes are blurred."""
    power = stft_magnitude(np.asarray(audio, dtype=np.float64).reshape(-1), n_fft, hop) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    keep = (freqs >= CHROMA_LOW_HZ) & (freqs <= CHROMA_HIGH_HZ)
    pitch = np.round(A4_MIDI + 12 * np.log2(freqs[keep] / A4_HZ)).astype(np.int64)
    hist = np.bincount(pitch % 12, weights=power[:, keep].sum(axis=0), minlength=12)
    total = hist.sum()
    return hist / total if total > 0 else np.full(12, 1 / 12)


def chroma_kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-6) -> float:
    """KL(p ‖ q) in nats of two histograms, each smoothed by ``eps`` and renormalised."""
    p = np.asarray(p, dtype=np.float64) + eps
    q = np.asarray(q, dtype=np.float64) + eps
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def codebook_usage(codes: np.ndarray, codebook_size: int) -> dict:
    """How a VQ codebook is used: perplexity exp(H) of the code frequencies (H in nats;
    K for uniform use of K codes, 1 for one code), used and dead codes, share used."""
    codes = np.asarray(codes).reshape(-1)
    if codes.size == 0:
        raise ValueError("codebook_usage: no codes")
    if not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0 or codes.max() >= codebook_size:
        raise ValueError(f"codebook_usage: codes must be integers in [0, {codebook_size}), "
                         f"got {codes.dtype} in [{codes.min()}, {codes.max()}]")
    counts = np.bincount(codes, minlength=codebook_size)
    p = counts[counts > 0] / codes.size
    used = int((counts > 0).sum())
    return {"perplexity": float(np.exp(-np.sum(p * np.log(p)))), "used": used,
            "dead": codebook_size - used, "usage_share": used / codebook_size}


def long_term_spectrum_distance(a: np.ndarray, b: np.ndarray, n_fft: int = 2048, hop: int = 512) -> float:
    """Mean absolute difference in dB between the long-term average power spectra of two
    recordings: how far apart their timbre and register are, with no need to align them."""
    def ltas(x: np.ndarray) -> np.ndarray:
        power = stft_magnitude(np.asarray(x, dtype=np.float64).reshape(-1), n_fft, hop) ** 2
        return 10 * np.log10(power.mean(axis=0) + 1e-10)

    return float(np.mean(np.abs(ltas(a) - ltas(b))))
