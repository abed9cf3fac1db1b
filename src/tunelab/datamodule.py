"""Token arrays from the tokenize stage as Lightning data: random training windows,
whole sequences for validation and test.

Three views of a token sequence, one per kind of network:

* :class:`EventSequenceDataset` -- encoder features in, next event out (MelodyRNN);
* :class:`TokenSequenceDataset` -- token ids in after a start token (Transformer LMs);
* :class:`AccompanimentDataset` -- a step-major voice grid split into the melody (source)
  and the accompaniment parts (target) for an encoder-decoder;
* :class:`LatentWindowDataset` -- a piece's fixed-length windows for a MusicVAE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tunelab.models.lm_module import IGNORE
from tunelab.resume import ResumableLoader, trained_batches
from tunelab.shards import TokenSplit, load_token_split

SPLITS = ("train", "valid", "test")
# augment(piece, rng) -> an augmented piece (e.g. transposed, time-stretched) to train on
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def load_split(folder: Path, split: str) -> TokenSplit:
    """Sequences of one split, as written by :func:`tunelab.pipeline.tokenize.tokenize`:
    a memory-mapped sequence of int64 arrays, each read when it is indexed."""
    return load_token_split(Path(folder), split)


def lengths_of(sequences: Sequence[np.ndarray]) -> np.ndarray:
    """Each sequence's length, without reading a memory-mapped split's tokens."""
    if isinstance(sequences, TokenSplit):
        return sequences.lengths
    return np.array([len(s) for s in sequences], dtype=np.int64)


def keep_at_least(sequences: Sequence[np.ndarray], n: int) -> list[int]:
    """Indices of the sequences at least ``n`` long (the datasets read only these)."""
    return np.flatnonzero(lengths_of(sequences) >= n).tolist()


class EventSequenceDataset(Dataset):
    """Per-sequence (inputs, labels): inputs[t] describes events[:t+1], labels[t] = event t+1.

    Args:
        sequences: label arrays, one per melody or piece.
        encoding: gives ``decode`` (labels -> events) and ``inputs`` (events -> features).
        window: crop training sequences to ``window + 1`` steps at a random offset; None
            keeps whole sequences.
    """

    def __init__(self, sequences: Sequence[np.ndarray], encoding: Any, window: int | None,
                 seed: int = 0) -> None:
        self.sequences, self.keep = sequences, keep_at_least(sequences, 2)
        self.encoding = encoding
        self.window = window
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        labels = np.asarray(self.sequences[self.keep[i]], dtype=np.int64)
        feats = self.encoding.inputs(self.encoding.decode(labels))  # (T, F)
        if self.window is not None and len(labels) > self.window + 1:
            a = int(self.rng.integers(0, len(labels) - self.window))
            labels, feats = labels[a:a + self.window + 1], feats[a:a + self.window + 1]
        return {"inputs": torch.from_numpy(np.asarray(feats[:-1], dtype=np.float32)),
                "labels": torch.from_numpy(labels[1:].astype(np.int64))}


class _Windows:
    """Which slice of which sequence each item is: one random window per sequence while
    training (``random=True``), else every consecutive window (evaluation of models whose
    memory grows with length), or whole sequences when ``window`` is None."""

    def __init__(self, lengths: list[int], window: int | None, random: bool, seed: int) -> None:
        self.lengths, self.window, self.random = lengths, window, random
        self.rng = np.random.default_rng(seed)
        self.items = [(i, 0) for i in range(len(lengths))]
        if window is not None and not random:
            self.items = [(i, a) for i, n in enumerate(lengths) for a in range(0, max(n, 1), window)]

    def __len__(self) -> int:
        return len(self.items)

    def random_span(self, n: int) -> tuple[int, int]:
        """A random ``window`` (or everything) of a sequence of length ``n``."""
        if self.window is None or n <= self.window:
            return 0, n
        a = int(self.rng.integers(0, n - self.window + 1))
        return a, a + self.window

    def span(self, k: int) -> tuple[int, int, int]:
        """(sequence, start, stop) of item ``k``."""
        i, a = self.items[k]
        n = self.lengths[i]
        if self.window is None:
            return i, 0, n
        if self.random:
            return (i, *self.random_span(n))
        return i, a, min(a + self.window, n)


class TokenSequenceDataset(Dataset):
    """(inputs, labels) of token ids: ``labels`` are the tokens, ``inputs`` the same shifted
    right behind a start token ``bos``, so every token is predicted.

    ``window`` tokens per item: a random one per sequence for training, else consecutive
    windows covering each sequence once (a window after the first sees the token before it
    as its first input, not ``bos``).
    """

    def __init__(self, sequences: Sequence[np.ndarray], bos: int, window: int | None, seed: int = 0,
                 random: bool = True, augment: Augment | None = None) -> None:
        # sequences stay where they are (memory-mapped); an item reads its own, bos first
        self.sequences, self.keep, self.bos = sequences, keep_at_least(sequences, 1), bos
        self.windows = _Windows(lengths_of(sequences)[self.keep].tolist(), window, random, seed)
        self.augment = augment if random else None  # training windows only
        self.rng = np.random.default_rng(seed + 1)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, a, b = self.windows.span(k)
        seq = np.concatenate([[self.bos], self.sequences[self.keep[i]]]).astype(np.int64)
        if self.augment is not None:  # the whole piece, then a fresh window of its new length
            seq = np.concatenate([seq[:1], self.augment(seq[1:], self.rng)])
            a, b = self.windows.random_span(len(seq) - 1)
        seq = torch.from_numpy(seq[a:b + 1])
        return {"inputs": seq[:-1], "labels": seq[1:]}


class AccompanimentDataset(Dataset):
    """Step-major voice grids (melody, part 1, .., part P per step) as encoder-decoder
    items: ``source`` the melody steps, ``labels`` the parts step-major, ``inputs`` the
    labels after a start token. ``window`` is in steps, chosen as for
    :class:`TokenSequenceDataset`; each window is a self-contained item."""

    def __init__(self, sequences: Sequence[np.ndarray], num_parts: int, bos: int, window: int | None,
                 seed: int = 0, random: bool = True) -> None:
        self.voices = num_parts + 1
        self.sequences, self.keep = sequences, keep_at_least(sequences, self.voices)
        self.bos = bos
        steps = lengths_of(sequences)[self.keep] // self.voices
        self.windows = _Windows(steps.tolist(), window, random, seed)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, a, b = self.windows.span(k)
        grid = np.asarray(self.sequences[self.keep[i]], dtype=np.int64).reshape(-1, self.voices)[a:b]
        target = torch.from_numpy(grid[:, 1:].reshape(-1))
        return {"source": torch.from_numpy(grid[:, 0].copy()),
                "inputs": torch.cat([torch.tensor([self.bos]), target[:-1]]), "labels": target}


class LatentWindowDataset(Dataset):
    """A piece's concatenated ``(steps, parts)`` windows (tunelab.encodings.music_vae) as
    ``labels`` of shape (steps, parts). Training draws one random window per piece per
    epoch (augmented), so every piece weighs the same, as Magenta's per-sequence sampling;
    evaluation reads each piece's first ``eval_windows`` windows, as Magenta's eval does."""

    def __init__(self, sequences: Sequence[np.ndarray], steps: int, parts: int, seed: int = 0,
                 random: bool = True, augment: Augment | None = None, eval_windows: int = 5) -> None:
        self.sequences, self.steps, self.parts = sequences, steps, parts
        self.keep = keep_at_least(sequences, steps * parts)
        windows = lengths_of(sequences)[self.keep] // (steps * parts)  # per kept piece
        self.random, self.augment = random, augment if random else None
        self.rng = np.random.default_rng(seed)
        self.items = ([(i, None) for i in range(len(self.keep))] if random else
                      [(i, k) for i, w in enumerate(windows.tolist()) for k in range(min(w, eval_windows))])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, w = self.items[k]
        windows = np.asarray(self.sequences[self.keep[i]], dtype=np.int64).reshape(-1, self.steps, self.parts)
        window = windows[int(self.rng.integers(len(windows))) if w is None else w]
        if self.augment is not None:
            window = self.augment(window, self.rng)
        return {"labels": torch.from_numpy(np.ascontiguousarray(window, dtype=np.int64))}


def make_dataset(net: Any, encoding: Any, sequences: Sequence[np.ndarray], window: int | None,
                 seed: int = 0, train: bool = True, augment: Augment | None = None) -> Dataset:
    """The view of ``sequences`` that ``net`` trains on (see the module docstring): random
    ``window``-long crops for training; for evaluation whole sequences (RNNs) or every
    consecutive ``window`` (Transformers, whose attention memory is quadratic in length).
    A MusicVAE reads fixed windows of its own length; ``window`` does not apply."""
    if getattr(net, "window_steps", None):
        return LatentWindowDataset(sequences, net.window_steps, net.num_parts, seed, random=train,
                                   augment=augment)
    if getattr(net, "num_parts", None):
        return AccompanimentDataset(sequences, net.num_parts, net.bos, window, seed, random=train)
    if getattr(net, "token_inputs", False):
        # an RNN's state carries across a piece, so it is evaluated on whole pieces, like MelodyRNN
        whole = not train and getattr(net, "recurrent", False)
        return TokenSequenceDataset(sequences, net.bos, None if whole else window, seed, random=train,
                                    augment=augment)
    return EventSequenceDataset(sequences, encoding, window if train else None, seed)


def pad_collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Right-pad every field to its longest item: labels with IGNORE, inputs and source
    with 0; ``source_mask`` marks the real source steps."""
    batch = {}
    for key in items[0]:
        rows = [it[key] for it in items]
        T = max(len(r) for r in rows)
        fill = IGNORE if key == "labels" else 0
        out = torch.full((len(rows), T, *rows[0].shape[1:]), fill, dtype=rows[0].dtype)
        for b, r in enumerate(rows):
            out[b, :len(r)] = r
        batch[key] = out
        if key == "source":
            batch["source_mask"] = torch.arange(T)[None, :] < torch.tensor([len(r) for r in rows])[:, None]
    return batch


class EventDataModule(L.LightningDataModule):
    """Train/valid/test loaders over one processed folder, in the view ``net`` needs."""

    def __init__(self, folder: Path | list[Path], encoding: Any, batch_size: int, seq_len: int,
                 eval_batch_size: int = 32, seed: int = 0, net: Any = None,
                 augment: Augment | None = None) -> None:
        super().__init__()
        self.folders = [Path(f) for f in (folder if isinstance(folder, list) else [folder])]
        self.folder, self.encoding, self.net, self.augment = self.folders[0], encoding, net, augment
        self.batch_size, self.seq_len, self.eval_batch_size, self.seed = (
            batch_size, seq_len, eval_batch_size, seed)

    def dataset(self, split: str) -> Dataset:
        """One split of every folder (a joint model reads several corpora). Under DDP each
        rank crops and augments from its own stream (rank 0's is the single-process one)."""
        sequences = TokenSplit.chain(load_split(f, split) for f in self.folders)
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return make_dataset(self.net, self.encoding, sequences, self.seq_len, self.seed + rank,
                            train=split == "train", augment=self.augment)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        if len(ds) == 0:
            raise ValueError(f"{self.folder}: the {split} split has no usable sequences; "
                             "the corpus is too small for this split")
        if split != "train":
            return DataLoader(ds, batch_size=self.eval_batch_size, shuffle=shuffle, collate_fn=pad_collate,
                              generator=torch.Generator().manual_seed(self.seed))
        return ResumableLoader(ds, batch_size=self.batch_size, shuffle=shuffle, collate_fn=pad_collate,
                               generator=torch.Generator().manual_seed(self.seed),
                               batches_done=trained_batches(self))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


class DatasetsModule(L.LightningDataModule):
    """Ready-made train and validation datasets (the Jukebox windows) as Lightning data:
    shuffled, resumable training batches drawn from the global RNG, as
    ``LightningDataModule.from_datasets`` draws them, and validation in order."""

    def __init__(self, train: Dataset, valid: Dataset, batch_size: int) -> None:
        super().__init__()
        self.train, self.valid, self.batch_size = train, valid, batch_size

    def train_dataloader(self) -> DataLoader:
        return ResumableLoader(self.train, batch_size=self.batch_size, shuffle=True, pin_memory=True,
                               batches_done=trained_batches(self))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.valid, batch_size=self.batch_size, pin_memory=True)
