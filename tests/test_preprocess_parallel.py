"""Parallel, sharded preprocessing (tunelab.pipeline.parallel, tunelab.shards): the same bytes
from 1 or 2 local workers and from a 2-process Dask cluster, bad files skipped, and token
arrays that read back as exactly the sequences (and training batches) of the old ``.npz``."""

from __future__ import annotations

import operator
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import MIRROR, tiny_overrides
from tunelab.config import load_config
from tunelab.datamodule import EventDataModule, load_split
from tunelab.encodings.registry import encoding_for
from tunelab.pipeline.extract import download, extract
from tunelab.pipeline.parallel import Engine, map_ordered
from tunelab.pipeline.tokenize import tokenize
from tunelab.shards import SPLITS, TokenSplit, TokenWriter

SOLOS = 30
ENCODINGS = ("melody_onehot", "performance")
SHARD = 8  # 30 solos -> 4 extract shards; small enough that 2 workers interleave


def config(data: Path, *overrides: str):
    return load_config([*tiny_overrides(data.parent), f"paths.data={data}", "corpus=jazz",
                        f"corpus.mirror={MIRROR}", f"preprocess.shard_size={SHARD}", *overrides])


@pytest.fixture(scope="module")
def jazz_raw(tmp_path_factory, mirror) -> Path:
    """The first 30 Weimar Jazz Database solos, one of them without its beat track (a bad file)."""
    data = tmp_path_factory.mktemp("raw") / "data"
    download(config(data))
    raw = data / "raw/jazz"
    melodies = sorted((raw / "mcsv_melody").glob("*_FINAL.csv"))
    for path in melodies[SOLOS:]:
        path.unlink()
    bad = melodies[3].name
    (raw / "mcsv_beat" / bad.replace("_FINAL.csv", "_FINAL_beattrack.csv")).unlink()
    return raw


def run(jazz_raw: Path, root: Path, *overrides: str) -> Path:
    """extract + tokenize (ENCODINGS) of the 30 solos into ``root``/data; returns that folder."""
    data = root / "data"
    shutil.copytree(jazz_raw, data / "raw/jazz")
    cfg = config(data, *overrides)
    stats = extract(cfg)
    assert stats["pieces"] == SOLOS - 1 and stats["skipped_files"] == 1
    assert next(iter(stats["skipped"].values())).startswith("no beat track")
    for name in ENCODINGS:
        tokenize(cfg, name)
    return data


def outputs(data: Path) -> dict[str, bytes]:
    return {p.relative_to(data).as_posix(): p.read_bytes()
            for p in sorted((data / "interim").rglob("*")) + sorted((data / "processed").rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def single(jazz_raw, tmp_path_factory) -> Path:
    return run(jazz_raw, tmp_path_factory.mktemp("w1"), "preprocess.workers=1")


def test_two_workers_write_the_same_bytes(jazz_raw, single, tmp_path):
    two = run(jazz_raw, tmp_path, "preprocess.workers=2")
    assert outputs(two) == outputs(single)
    assert len(outputs(single)) == 3 + 2 * (3 * 4 + 3)  # interim 3; per encoding 4 per split + 3


def test_dask_local_cluster_writes_the_same_bytes(jazz_raw, single, tmp_path):
    pytest.importorskip("dask.distributed")
    dask = run(jazz_raw, tmp_path, "preprocess.engine=dask", "preprocess.workers=2")
    assert outputs(dask) == outputs(single)


def test_shard_size_moves_only_gzip_framing(jazz_raw, single, tmp_path):
    """Another shard size: the same decompressed interim lines, the same token files."""
    import gzip

    other = run(jazz_raw, tmp_path, "preprocess.workers=1", "preprocess.shard_size=5")
    a, b = outputs(single), outputs(other)
    for name in a:
        if name.endswith(".gz"):
            assert gzip.decompress(a[name]) == gzip.decompress(b[name]), name
        else:
            assert a[name] == b[name], name


def write_old_npz(folder: Path, split: str, seqs: list[np.ndarray]) -> None:
    """The tokenize stage's output before tunelab.shards (one compressed .npz per split)."""
    np.savez_compressed(folder / f"{split}.npz",
                        tokens=np.concatenate(seqs).astype(np.int16) if seqs else np.zeros(0, np.int16),
                        offsets=np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64),
                        ids=np.array([str(i) for i in range(len(seqs))]))


@pytest.fixture
def old_and_new(single, tmp_path) -> tuple[Path, Path]:
    new = single / "processed/jazz/melody_onehot"
    old = tmp_path / "old"
    old.mkdir()
    for split in SPLITS:
        write_old_npz(old, split, list(load_split(new, split)))
    return old, new


def test_old_npz_and_new_format_give_the_same_sequences(old_and_new):
    old, new = old_and_new
    for split in SPLITS:
        a, b = load_split(old, split), load_split(new, split)
        assert isinstance(np.load(new / f"{split}.tokens.npy", mmap_mode="r"), np.memmap)
        assert len(a) == len(b) > 0
        assert all(x.dtype == y.dtype == np.int64 and np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert np.array_equal(b.lengths, [len(x) for x in a])
        assert [len(x) for x in b[-3:]] == [len(x) for x in a[-3:]]


NETS = {  # the attributes make_dataset reads: MelodyRNN, a Transformer LM, a MusicVAE, an accompanist
    "event": SimpleNamespace(),
    "token": SimpleNamespace(token_inputs=True, bos=38, recurrent=False),
    "vae": SimpleNamespace(window_steps=4, num_parts=3),
    "grid": SimpleNamespace(num_parts=2, bos=38),
}


def batches(folder: Path, net: SimpleNamespace, encoding) -> list[dict[str, torch.Tensor]]:
    """Six training batches (random windows, shuffled) and every validation batch, seed fixed."""
    dm = EventDataModule(folder, encoding, batch_size=4, seq_len=16, seed=7, net=net)
    return [b for _, b in zip(range(6), dm.train_dataloader(), strict=False)] + list(dm.val_dataloader())


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) > 6
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("kind", ["event", "token"])
def test_old_npz_and_new_format_give_the_same_batches(old_and_new, single, kind):
    old, new = old_and_new
    encoding = encoding_for(config(single), "melody_onehot")
    assert_same_batches(batches(old, NETS[kind], encoding), batches(new, NETS[kind], encoding))


@pytest.mark.parametrize("kind", ["vae", "grid"])
def test_old_npz_and_new_format_give_the_same_windows(tmp_path, kind):
    """Window and voice-grid views (lengths a multiple of 4 steps x 3 parts), written both ways."""
    rng = np.random.default_rng(0)
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    writer = TokenWriter(new, np.int16)
    for split, n in zip(SPLITS, (40, 9, 9), strict=True):
        seqs = [rng.integers(0, 38, size=12 * int(rng.integers(1, 6))) for _ in range(n)]
        write_old_npz(old, split, seqs)
        writer.append(split, [str(i) for i in range(n)], seqs[:5], [0] * 5)
        writer.append(split, [str(i) for i in range(5, n)], seqs[5:], [0] * (n - 5))  # a second shard
    writer.close()
    assert_same_batches(batches(old, NETS[kind], None), batches(new, NETS[kind], None))


def test_a_token_split_pickles_as_a_reopened_memory_map(old_and_new):
    """DataLoader workers and DDP ranks get the file names, not a copy of the tokens."""
    _, new = old_and_new
    split = load_split(new, "valid")
    blob = pickle.dumps(split)
    assert len(blob) < 4096 + 8 * len(split)
    again = pickle.loads(blob)
    assert isinstance(again.parts[0].tokens, np.memmap)
    assert all(np.array_equal(x, y) for x, y in zip(split, again, strict=True))
    both = TokenSplit.chain([split, again])
    assert len(both) == 2 * len(split) and np.array_equal(both[len(split)], split[0])


def test_map_ordered_keeps_task_order_and_bounds_what_it_reads():
    """Results come back in task order; the task iterator is read only a few ahead."""
    read = []

    def tasks():
        for i in range(40):
            read.append(i)
            yield i

    out = map_ordered(operator.neg, tasks(), Engine("local", workers=2))  # a builtin: workers start fast
    first = next(out)
    assert first == 0 and len(read) <= 2 * 2 + 1
    assert [first, *out] == [-i for i in range(40)]


def test_one_shard_is_the_single_member_file_of_before(tmp_path):
    """A shard's gzip member is byte for byte what write_jsonl_gz wrote for the same lines, and
    a file of several members reads back as one stream."""
    from tunelab.music.score import read_jsonl_gz, write_jsonl_gz
    from tunelab.shards import jsonl_gz_member

    records = [{"id": f"tune_{i}", "notes": list(range(i % 50)), "split": "train"} for i in range(3000)]
    write_jsonl_gz(tmp_path / "one.jsonl.gz", records)
    assert jsonl_gz_member(records) == (tmp_path / "one.jsonl.gz").read_bytes()
    assert jsonl_gz_member([]) == b""
    (tmp_path / "many.jsonl.gz").write_bytes(b"".join(jsonl_gz_member(records[i:i + 700])
                                                      for i in range(0, len(records), 700)))
    assert list(read_jsonl_gz(tmp_path / "many.jsonl.gz")) == records
