"""Jukebox's priors: cached sampling equals recomputation, the style and the upsampler's
conditioning reach the prediction, and windowed sampling keeps its prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunelab.families.jukebox.jukebox import sample_level
from tunelab.models.components.jukebox_prior import CodePrior


def _prior(cond: bool = False) -> CodePrior:
    torch.manual_seed(0)
    kw = {"cond_codebook_size": 16, "upsample": 4} if cond else {}
    return CodePrior(16, 3, d_model=32, num_layers=2, num_heads=2, d_ff=64, dropout=0.0,
                     max_relative_position=32, **kw).eval()


def _shifted(prior: CodePrior, codes: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.full((codes.shape[0], 1), prior.bos), codes[:, :-1]], 1)


@pytest.mark.parametrize("cond", [False, True])
def test_cached_steps_equal_full_recompute(cond):
    prior = _prior(cond)
    codes = torch.randint(0, 16, (2, 12))
    style = torch.tensor([0, 2])
    up = torch.randint(0, 16, (2, 3)) if cond else None
    full, _ = prior(_shifted(prior, codes), style, up)
    cache = prior.new_cache()
    first, _ = prior(_shifted(prior, codes)[:, :5], style, up, cache)
    steps = [prior(_shifted(prior, codes)[:, i:i + 1], style, up, cache)[0] for i in range(5, 12)]
    assert torch.allclose(torch.cat([first, *steps], 1), full, atol=1e-5)


def test_style_and_upsampled_codes_change_the_prediction():
    prior = _prior(cond=True)
    codes = torch.randint(0, 16, (1, 32))
    up = torch.randint(0, 16, (1, 8))  # 8 codes above, 4 positions each
    base, _ = prior(_shifted(prior, codes), torch.tensor([0]), up)
    other_style, _ = prior(_shifted(prior, codes), torch.tensor([1]), up)
    assert not torch.allclose(base, other_style)
    changed = up.clone()
    changed[0, 7] = (changed[0, 7] + 1) % 16
    other_cond, _ = prior(_shifted(prior, codes), torch.tensor([0]), changed)
    # the last code above covers positions 28..31; the conditioner's dilated convolutions
    # (dilations 1 and 3, kernel 3) spread it 4 positions back, causal attention no further
    assert torch.allclose(base[:, :24], other_cond[:, :24], atol=1e-6)
    assert not torch.allclose(base[:, 24:], other_cond[:, 24:])


def test_upsampler_without_codes_above_fails_clearly():
    prior = _prior(cond=True)
    with pytest.raises(ValueError, match="codes of the level above"):
        prior(torch.zeros(1, 4, dtype=torch.long), torch.tensor([0]))


@pytest.mark.parametrize("cond", [False, True])
def test_windowed_sampling_keeps_the_prompt_and_the_length(cond):
    prior = _prior(cond)
    prompt = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    up = torch.randint(0, 16, (1, 10)) if cond else None
    out = sample_level(prior, 40, 1, cond=up, upsample=4 if cond else 1, context=16, prompt=prompt,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (40,) and out.dtype == np.int64
    assert (out[:8] == prompt).all() and out.min() >= 0 and out.max() < 16
    again = sample_level(prior, 40, 1, cond=up, upsample=4 if cond else 1, context=16, prompt=prompt,
                         generator=torch.Generator().manual_seed(0))
    assert (again == out).all()
