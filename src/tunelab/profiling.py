"""Memory of tensor computations, measured: the bytes a function's intermediate tensors
hold at their peak, on any device (the Music Transformer benchmark and the skewing figure)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveTensorTracker(TorchDispatchMode):
    """Peak bytes of the storages created by ops run under the mode, while they are alive.

    Each output's storage is counted once (keyed by its data pointer, so views and in-place
    results add nothing) and subtracted by a ``weakref.finalize`` when the storage is freed.
    Storages of ``exclude`` (inputs made before) are never counted.
    """

    def __init__(self, exclude: Sequence[torch.Tensor] = ()) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[tuple[str, int], int] = {}
        for t in exclude:
            s = t.untyped_storage()
            self._sizes[(str(s.device), s.data_ptr())] = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        s = t.untyped_storage()
        n = s.nbytes()
        key = (str(s.device), s.data_ptr())
        if n == 0 or key in self._sizes:
            return
        self._sizes[key] = n
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(s, self._free, key)

    def _free(self, key: tuple[str, int]) -> None:
        self.live -= self._sizes.pop(key, 0)


def tracker_self_check() -> None:
    """The tracker sees a 1000-float allocation, and its release."""
    with LiveTensorTracker() as tr:
        x = torch.empty(1000, dtype=torch.float32)
        assert tr.live >= 4000, tr.live
        del x
        gc.collect()
    assert tr.peak >= 4000 and tr.live == 0, (tr.peak, tr.live)


def peak_bytes(fn: Callable[..., Any], *inputs: torch.Tensor) -> int:
    """Peak bytes of the tensors ``fn(*inputs)`` creates (its output included, inputs not)."""
    gc.collect()
    with torch.no_grad(), LiveTensorTracker(exclude=inputs) as tr:
        out = fn(*inputs)
    del out
    gc.collect()
    return tr.peak
