"""The token vocabulary shared by every encoding, and the interface encodings follow."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Vocab:
    """An ordered, immutable list of token names; a token's id is its position.

    Attributes:
        tokens: The token names, unique, in id order.
    """

    tokens: tuple[str, ...]
    # name -> id, built once; excluded from equality and repr (derived from `tokens`).
    _ids: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        tokens = tuple(self.tokens)
        if not all(isinstance(t, str) for t in tokens):
            raise TypeError("vocab tokens must be strings")
        ids = {t: i for i, t in enumerate(tokens)}
        if len(ids) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"duplicate vocab tokens: {dupes}")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "_ids", ids)

    @classmethod
    def of(cls, tokens: Iterable[str]) -> Vocab:
        """Builds a vocab from any iterable of names."""
        return cls(tuple(tokens))

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self):
        return iter(self.tokens)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def index(self, name: str) -> int:
        """The id of token ``name``.

        Raises:
            KeyError: ``name`` is not in the vocab.
        """
        try:
            return self._ids[name]
        except KeyError:
            raise KeyError(f"token {name!r} not in vocab of {len(self)}") from None

    def name(self, i: int) -> str:
        """The token name of id ``i``.

        Raises:
            IndexError: ``i`` is outside ``[0, len(self))``.
        """
        if not 0 <= i < len(self.tokens):
            raise IndexError(f"token id {i} outside [0, {len(self.tokens)})")
        return self.tokens[int(i)]

    def names(self, ids: Iterable[int]) -> list[str]:
        """Token names of a sequence of ids (for printing and debugging)."""
        return [self.name(int(i)) for i in ids]

    def to_json(self, path: str | Path | None = None) -> str:
        """Serializes to JSON; also writes it to ``path`` when one is given.

        Args:
            path: Optional file to write.

        Returns:
            The JSON text, ``{"tokens": [...]}``.
        """
        text = json.dumps({"tokens": list(self.tokens)}, indent=0)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> Vocab:
        """Loads a vocab from a JSON file path or from JSON text.

        Args:
            source: A :class:`~pathlib.Path`, a path string, or the JSON text itself.
        """
        if isinstance(source, Path) or not source.lstrip().startswith("{"):
            source = Path(source).read_text(encoding="utf-8")
        return cls(tuple(json.loads(source)["tokens"]))


@runtime_checkable
class Encoding(Protocol):
    """What every tunelab encoding offers.

    ``decode(encode(x)) == x`` for every valid ``x`` (for lossy inputs, for the canonical
    form the encoding documents, e.g. :func:`tunelab.encodings.performance.to_performance_grid`).
    Labels are ``int64`` ids into ``vocab``; ``len(vocab) == num_classes``.
    """

    name: str

    @property
    def vocab(self) -> Vocab: ...

    @property
    def num_classes(self) -> int: ...

    def encode(self, x: Any) -> np.ndarray: ...

    def decode(self, labels: Any) -> Any: ...
