"""Early stopping and the best-validation weights (tunelab.convergence)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from tunelab.convergence import BestWeights, early_stopping
from tunelab.errors import ConfigError


def _trainer(loss: float, step: int) -> SimpleNamespace:
    return SimpleNamespace(sanity_checking=False, callback_metrics={"val/loss": torch.tensor(loss)},
                           global_step=step)


def test_best_weights_keeps_the_lowest_validation_and_restores_it() -> None:
    module = SimpleNamespace(net=nn.Linear(2, 1))
    best = BestWeights()
    for step, (loss, value) in enumerate([(2.0, 1.0), (1.0, 2.0), (1.5, 3.0), (float("nan"), 4.0)]):
        nn.init.constant_(module.net.weight, value)
        best.on_validation_end(_trainer(loss, step * 100), module)
    assert (best.best, best.step) == (1.0, 100)
    state = best.state_dict()
    resumed = BestWeights()
    resumed.load_state_dict(state)  # a resumed run keeps the same best
    assert resumed.restore(module)
    assert torch.equal(module.net.weight, torch.full((1, 2), 2.0))


def test_best_weights_without_validation_keeps_the_last() -> None:
    assert not BestWeights().restore(SimpleNamespace(net=nn.Linear(2, 1)))


def test_early_stopping_from_config() -> None:
    cfg = OmegaConf.create({"trainer": {"early_stopping": {"monitor": "val/loss", "patience": 2}}})
    stopper = early_stopping(cfg)
    assert stopper.patience == 2 and stopper.monitor == "val/loss"
    assert early_stopping(OmegaConf.create({"trainer": {"early_stopping": {"patience": None}}})) is None
    with pytest.raises(ConfigError, match="trainer.early_stopping.patience"):
        early_stopping(OmegaConf.create({"trainer": {"early_stopping": {"patience": 0}}}))
