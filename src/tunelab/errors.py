"""Errors every layer raises and the CLI turns into one line, and the checks that raise them."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A bad override or value; the message is one line naming the key."""


def require(ok: bool, key: str, value: Any, rule: str) -> None:
    """Raise ConfigError ``key=value: rule`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}={value}: {rule}")


def is_number(v: Any) -> bool:
    """An int or float from the config (YAML's true/false are not numbers here)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def positive_int(cfg: DictConfig, key: str) -> None:
    v = OmegaConf.select(cfg, key)
    require(isinstance(v, int) and not isinstance(v, bool) and v > 0, key, v, "must be a positive integer")
