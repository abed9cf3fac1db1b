"""Token arrays from the tokenize stage as Lightning data: random training windows,
whole sequences for validation and test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tunelab.models.lm_module import IGNORE

SPLITS = ("train", "valid", "test")


def load_split(folder: Path, split: str) -> list[np.ndarray]:
    """Sequences of one split, as written by :func:`tunelab.tokenize.tokenize`."""
    path = Path(folder) / f"{split}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the tokenize stage first")
    with np.load(path) as z:
        tokens, offsets = z["tokens"], z["offsets"]
    return [tokens[a:b].astype(np.int64) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


class EventSequenceDataset(Dataset):
    """Per-sequence (inputs, labels): inputs[t] describes events[:t+1], labels[t] = event t+1.

    Args:
        sequences: label arrays, one per melody or piece.
        encoding: gives ``decode`` (labels -> events) and ``inputs`` (events -> features).
        window: crop training sequences to ``window + 1`` steps at a random offset; None
            keeps whole sequences.
    """

    def __init__(self, sequences: list[np.ndarray], encoding: Any, window: int | None,
                 seed: int = 0) -> None:
        self.sequences = [s for s in sequences if len(s) >= 2]
        self.encoding = encoding
        self.window = window
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        labels = self.sequences[i]
        feats = self.encoding.inputs(self.encoding.decode(labels))  # (T, F)
        if self.window is not None and len(labels) > self.window + 1:
            a = int(self.rng.integers(0, len(labels) - self.window))
            labels, feats = labels[a:a + self.window + 1], feats[a:a + self.window + 1]
        return {"inputs": torch.from_numpy(np.asarray(feats[:-1], dtype=np.float32)),
                "labels": torch.from_numpy(labels[1:].astype(np.int64))}


def pad_collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Right-pad to the longest item; padded labels are IGNORE."""
    T = max(len(it["labels"]) for it in items)
    F = items[0]["inputs"].shape[1]
    inputs = torch.zeros(len(items), T, F)
    labels = torch.full((len(items), T), IGNORE, dtype=torch.long)
    for b, it in enumerate(items):
        n = len(it["labels"])
        inputs[b, :n] = it["inputs"]
        labels[b, :n] = it["labels"]
    return {"inputs": inputs, "labels": labels}


class EventDataModule(L.LightningDataModule):
    def __init__(self, folder: Path, encoding: Any, batch_size: int, seq_len: int,
                 eval_batch_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.folder, self.encoding = Path(folder), encoding
        self.batch_size, self.seq_len, self.eval_batch_size, self.seed = (
            batch_size, seq_len, eval_batch_size, seed)

    def dataset(self, split: str) -> EventSequenceDataset:
        window = self.seq_len if split == "train" else None
        return EventSequenceDataset(load_split(self.folder, split), self.encoding, window, self.seed)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        if len(ds) == 0:
            raise ValueError(f"{self.folder}/{split}.npz has no sequences of 2+ steps; "
                             "the corpus is too small for this split")
        bs = self.batch_size if split == "train" else self.eval_batch_size
        return DataLoader(ds, batch_size=bs, shuffle=shuffle, collate_fn=pad_collate,
                          generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
