"""Download stage: pinned checksums, the mirror fallback, manifests, atomic outputs."""

from __future__ import annotations

import json
import shutil

import pytest

from tunelab.atomic import atomic_dir
from tunelab.corpora.download import ChecksumMismatchError, DataUnavailableError, sha256_file
from tunelab.pipeline.extract import download


def test_jsb_from_mirror_writes_manifest(tiny_cfg, mirror):
    cfg = tiny_cfg("corpus=jsb")
    out = download(cfg)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["file_count"] == 1 and manifest["source"].endswith("Jsb16thSeparated.json")
    assert manifest["sha256"]["Jsb16thSeparated.json"] == sha256_file(out / "Jsb16thSeparated.json")
    assert "version" in manifest and "license" in manifest


def test_jazz_from_mirror_checks_every_file(tiny_cfg, mirror):
    out = download(tiny_cfg("corpus=jazz"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["file_count"] == 912
    expected = dict(line.split("  ", 1)[::-1]
                    for line in (mirror / "wjazzd" / "SHA256SUMS.files").read_text().splitlines())
    assert manifest["sha256"] == expected


def test_no_network_and_no_mirror_names_both(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("TUNELAB_DATA_MIRROR", raising=False)
    cfg = tiny_cfg("corpus=jsb", f"corpus.mirror={tmp_path}/nowhere")
    with pytest.raises(DataUnavailableError) as err:
        download(cfg)
    msg = str(err.value)
    assert "raw.githubusercontent.com" in msg and "nowhere" in msg and "\n" not in msg


def test_checksum_mismatch_overwrites_nothing(tiny_cfg, mirror, tmp_path):
    good = download(tiny_cfg("corpus=jsb"))
    before = (good / "manifest.json").read_bytes()
    bad_mirror = tmp_path / "bad_mirror"
    shutil.copytree(mirror / "jsb", bad_mirror / "jsb")
    target = bad_mirror / "jsb" / "Jsb16thSeparated.json"
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-10] + b"          ")
    with pytest.raises(ChecksumMismatchError, match="does not match the pinned") as err:
        download(tiny_cfg("corpus=jsb", f"corpus.mirror={bad_mirror}"))
    assert str(err.value).startswith(f"{target}: sha256")  # the mirror file to fix, not a temp copy
    assert (good / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in good.parent.iterdir()) == ["jsb"]  # no temp folders left


def test_atomic_dir_keeps_old_output_on_error(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "half.txt").write_text("new")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (final / "keep.txt").read_text() == "old"
