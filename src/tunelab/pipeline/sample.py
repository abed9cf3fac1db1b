"""The sample stage (`tunelab sample`, alias `generate`): MIDI (Jukebox: WAV) from a
trained model -> samples/{model}-{corpus}/. How each family generates lives in its package
(``tunelab/families/<family>/``); the settings are the ``sample`` section of the config."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tunelab.families import family


def sample(cfg: DictConfig) -> list[Path]:
    """Write ``sample.num_outputs`` pieces (per style, for joint models); return their paths."""
    return family(cfg.model.family).generate(cfg)
