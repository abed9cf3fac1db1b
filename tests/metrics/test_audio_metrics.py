"""Audio metrics on hand-made signals whose answers are known: identical and silent
estimates, pure tones of known pitch class, and codebooks used uniformly or not at all."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunelab.metrics.audio_metrics import (
    chroma_histogram,
    chroma_kl,
    codebook_usage,
    long_term_spectrum_distance,
    multi_resolution_stft_distance,
    spectral_convergence,
    stft_magnitude,
)

RATE = 22050


def sine(hz: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)


@pytest.fixture
def noise() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1


def test_stft_matches_torch_stft_with_a_hann_window(noise):
    torch = pytest.importorskip("torch")
    x = torch.tensor(noise, dtype=torch.float64)
    want = torch.stft(x, 1024, 256, window=torch.hann_window(1024, dtype=torch.float64),
                      return_complex=True).abs().T.numpy()
    np.testing.assert_allclose(stft_magnitude(noise, 1024, 256), want, atol=1e-9)


def test_spectral_convergence_of_a_perfect_and_a_silent_estimate(noise):
    assert spectral_convergence(noise, noise) == 0.0
    assert spectral_convergence(noise, 0 * noise) == pytest.approx(1.0)
    assert spectral_convergence(noise, 2 * noise) == pytest.approx(1.0)  # |2S| - |S| = |S|
    assert 0 < spectral_convergence(noise, noise + 0.01 * sine(1000)) < 0.5
    assert spectral_convergence(np.zeros(4096), np.zeros(4096)) == 0.0


def test_batched_signals_and_mismatched_lengths(noise):
    batch = np.stack([noise, noise[::-1]])
    assert spectral_convergence(batch, batch) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        spectral_convergence(noise, noise[:-1])


def test_multi_resolution_stft_distance(noise):
    assert multi_resolution_stft_distance(noise, noise) == 0.0
    near = multi_resolution_stft_distance(noise, noise + 0.001 * sine(440))
    far = multi_resolution_stft_distance(noise, sine(440))
    assert 0 < near < far
    # one resolution: spectral convergence plus the mean log-magnitude distance
    one = multi_resolution_stft_distance(noise, 0.5 * noise, resolutions=((512, 128),))
    assert one == pytest.approx(spectral_convergence(noise, 0.5 * noise, 512, 128) + math.log(2), rel=1e-6)


@pytest.mark.parametrize(("hz", "pitch_class"), [(440.0, 9), (261.63, 0), (659.26, 4), (1975.5, 11)])
def test_chroma_of_a_pure_tone_peaks_at_its_pitch_class(hz, pitch_class):
    h = chroma_histogram(sine(hz, 2.0), RATE)
    assert h.shape == (12,) and h.sum() == pytest.approx(1.0)
    assert int(np.argmax(h)) == pitch_class and h[pitch_class] > 0.8


def test_chroma_of_silence_is_uniform_and_of_a_chord_spreads_over_its_notes():
    np.testing.assert_allclose(chroma_histogram(np.zeros(RATE), RATE), np.full(12, 1 / 12))
    c_major = chroma_histogram(sine(261.63) + sine(329.63) + sine(392.0), RATE)
    assert set(np.argsort(c_major)[-3:]) == {0, 4, 7}
    assert c_major[[0, 4, 7]].sum() > 0.9


def test_chroma_kl():
    p = np.array([0.5, 0.25, 0.25] + [0.0] * 9)
    assert chroma_kl(p, p) == 0.0
    a, b = np.eye(12)[0], np.eye(12)[6]
    assert chroma_kl(a, b) > 10  # disjoint: about log(1 / eps)
    assert chroma_kl(p, np.full(12, 1 / 12)) > 0


def test_codebook_usage():
    uniform = codebook_usage(np.tile(np.arange(16), 5), 64)
    assert uniform["perplexity"] == pytest.approx(16.0)
    assert (uniform["used"], uniform["dead"], uniform["usage_share"]) == (16, 48, 0.25)
    one = codebook_usage(np.full((4, 10), 7), 64)
    assert one["perplexity"] == pytest.approx(1.0) and one["used"] == 1 and one["dead"] == 63
    skewed = codebook_usage(np.array([0] * 90 + list(range(1, 11))), 16)
    assert 1 < skewed["perplexity"] < 11
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        codebook_usage(np.array([0, 8]), 8)


def test_long_term_spectrum_distance_in_db():
    noise = np.random.default_rng(0).standard_normal(22050)
    assert long_term_spectrum_distance(noise, noise) == 0
    # twice the amplitude is four times the power in every bin: 10 log10(4) dB
    assert long_term_spectrum_distance(noise, 2 * noise) == pytest.approx(10 * np.log10(4), abs=1e-6)
