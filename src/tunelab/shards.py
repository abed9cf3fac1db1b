"""On-disk format of a preprocessed corpus: the one place that knows how its bytes are laid out.

Work is cut into shards (``preprocess.shard_size`` source files, or pieces), processed by
any number of workers, and each shard's output is appended in shard order, so no stage holds
a whole corpus in memory and the bytes do not depend on the number of workers.

* data/interim/{corpus}/ ``scores.jsonl.gz``, ``melodies.jsonl.gz``: JSON lines, one gzip
  *member* per extract shard. A multi-member gzip file reads as one stream (``gzip.open``,
  :func:`tunelab.music.score.load_scores`), so every reader of the single-member files of
  earlier versions reads these unchanged.
* data/processed/{corpus}/{encoding}/ per split: ``{split}.tokens.npy`` (every sequence's
  labels concatenated, int16 or int32), ``{split}.offsets.npy`` (int64, n + 1),
  ``{split}.transpose.npy`` (int16, the squash transposition per melody) and
  ``{split}.ids.jsonl`` (one JSON string per sequence); ``tokens.json`` names the format
  and the counts. The ``.npy`` files are uncompressed, so readers memory-map them.
  Folders written before the format had a ``{split}.npz`` instead; :func:`load_token_split`
  still reads them (into memory).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

TOKEN_FORMAT = "tunelab-tokens/2"
TOKEN_INDEX = "tokens.json"
SPLITS = ("train", "valid", "test")


# --- interim: gzip JSON lines, one member per shard ---------------------------------------

def jsonl_gz_member(records: Iterable[dict]) -> bytes:
    """Records as one gzip member of JSON lines (b"" for none: an empty shard adds nothing).

    Written through the same ``TextIOWrapper`` over ``GzipFile`` (mtime 0, no file name) as
    :func:`tunelab.music.score.write_jsonl_gz`: zlib's output depends on how its input is
    fed, and this way a corpus of one shard gives the very bytes of the single-member files
    of earlier versions.
    """
    buf = io.BytesIO()
    empty = True
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
            empty = False
    return b"" if empty else buf.getvalue()


def jsonl_chunks(path: Path, size: int) -> Iterator[bytes]:
    """The JSON lines of a gzip file (single or multi-member) in chunks of ``size`` lines,
    still as bytes: parsing them is the workers' job."""
    with gzip.open(path, "rb") as f:
        lines: list[bytes] = []
        for line in f:
            lines.append(line)
            if len(lines) == size:
                yield b"".join(lines)
                lines = []
        if lines:
            yield b"".join(lines)


def parse_jsonl(chunk: bytes) -> list[dict]:
    return [json.loads(line) for line in chunk.splitlines()]


# --- processed: memory-mapped token arrays ----------------------------------------------

def _npy_header(dtype: np.dtype, n: int) -> bytes:
    """A version 1.0 ``.npy`` header for a 1-d array of ``n`` items. numpy pads the header
    for 21 shape digits, so its length does not depend on ``n`` and it can be rewritten in
    place once the array's length is known."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": (n,)})
    return buf.getvalue()


class _NpyStream:
    """A 1-d ``.npy`` file written by appending arrays; its header is finished on close."""

    def __init__(self, path: Path, dtype: Any) -> None:
        self.dtype, self.n = np.dtype(dtype), 0
        self.f: BinaryIO = open(path, "wb")  # closed by close(), once the length is known
        self.header_len = len(_npy_header(self.dtype, 0))
        self.f.write(_npy_header(self.dtype, 0))

    def append(self, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a, dtype=self.dtype)
        self.f.write(a.tobytes())
        self.n += len(a)

    def close(self) -> None:
        header = _npy_header(self.dtype, self.n)
        if len(header) != self.header_len:  # numpy changed its padding rule
            raise RuntimeError(f"{self.f.name}: .npy header grew from {self.header_len} "
                               f"to {len(header)} bytes")
        self.f.seek(0)
        self.f.write(header)
        self.f.close()


class TokenWriter:
    """Writes one processed folder's token arrays split by split, shard by shard (see the
    module docstring); the folder should be a temporary one (:func:`tunelab.atomic.atomic_dir`)."""

    def __init__(self, folder: Path, dtype: Any) -> None:
        self.folder, self.dtype = Path(folder), np.dtype(dtype)
        self.tokens = {s: _NpyStream(self.folder / f"{s}.tokens.npy", dtype) for s in SPLITS}
        self.transpose = {s: _NpyStream(self.folder / f"{s}.transpose.npy", np.int16) for s in SPLITS}
        self.lengths: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}  # 8 bytes per sequence
        self.ids = {s: open(self.folder / f"{s}.ids.jsonl", "w", encoding="utf-8", newline="\n")
                    for s in SPLITS}

    def append(self, split: str, ids: Sequence[str], seqs: Sequence[np.ndarray],
               transpose: Sequence[int]) -> None:
        """Add sequences (with their ids and transpositions) at the end of ``split``."""
        if not seqs:
            return
        self.tokens[split].append(np.concatenate(seqs))
        self.transpose[split].append(np.asarray(transpose, dtype=np.int16))
        self.lengths[split].append(np.array([len(s) for s in seqs], dtype=np.int64))
        self.ids[split].writelines(json.dumps(i) + "\n" for i in ids)

    def close(self) -> dict:
        """Finish every file and write the index; returns it."""
        index: dict[str, Any] = {"format": TOKEN_FORMAT, "dtype": self.dtype.str, "splits": {}}
        for s in SPLITS:
            self.tokens[s].close()
            self.transpose[s].close()
            self.ids[s].close()
            lengths = np.concatenate([np.zeros(1, np.int64), *self.lengths[s]])
            np.save(self.folder / f"{s}.offsets.npy", np.cumsum(lengths))
            index["splits"][s] = {"sequences": len(lengths) - 1, "tokens": int(lengths.sum())}
        (self.folder / TOKEN_INDEX).write_text(json.dumps(index, indent=2) + "\n")
        return index


class _Part:
    """One folder's split: concatenated tokens + offsets, memory-mapped where possible."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, source: tuple[str, str] | None) -> None:
        self.tokens, self.offsets, self.source = tokens, np.asarray(offsets), source

    def __reduce__(self) -> tuple:
        # A DataLoader worker or DDP rank re-maps the files instead of receiving a pickled copy.
        if self.source is not None:
            return _open_part, self.source
        return _Part, (self.tokens, self.offsets, None)


def _open_part(folder: str, split: str) -> _Part:
    folder_path = Path(folder)
    tokens = np.load(folder_path / f"{split}.tokens.npy", mmap_mode="r")
    # offsets are 8 bytes per sequence: read, not mapped, so only the tokens hold a file open
    offsets = np.load(folder_path / f"{split}.offsets.npy")
    return _Part(tokens, offsets, (folder, split))


class TokenSplit(Sequence):
    """The sequences of one split (of one or more folders) as int64 arrays, read on access.

    ``split[i]`` is a fresh int64 copy of sequence ``i``, exactly what the whole-array
    reader gave; ``lengths`` are known without reading any token.
    """

    def __init__(self, parts: list[_Part]) -> None:
        self.parts = parts
        counts = [len(p.offsets) - 1 for p in parts]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.lengths = (np.concatenate([np.diff(p.offsets) for p in parts]).astype(np.int64)
                        if parts else np.zeros(0, np.int64))

    @staticmethod
    def chain(splits: Iterable[TokenSplit]) -> TokenSplit:
        return TokenSplit([p for s in splits for p in s.parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sequence {i} of {n}")
        i = int(i) % n
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        part, j = self.parts[k], i - int(self.starts[k])
        a, b = int(part.offsets[j]), int(part.offsets[j + 1])
        return np.array(part.tokens[a:b], dtype=np.int64)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))


def load_token_split(folder: Path, split: str) -> TokenSplit:
    """One split of a processed folder, memory-mapped (or an older ``{split}.npz``, read).

    Raises:
        FileNotFoundError: neither format is there (the tokenize stage has not run).
    """
    folder = Path(folder)
    if (folder / f"{split}.tokens.npy").is_file():
        return TokenSplit([_open_part(str(folder), split)])
    legacy = folder / f"{split}.npz"
    if legacy.is_file():
        with np.load(legacy) as z:
            return TokenSplit([_Part(z["tokens"], z["offsets"], None)])
    raise FileNotFoundError(f"{folder / f'{split}.tokens.npy'} is missing: run the tokenize stage first")

