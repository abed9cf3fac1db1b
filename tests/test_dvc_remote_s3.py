"""The DVC remote on S3, end to end: ``dvc push`` to a local moto S3 server, wipe the cache and
the workspace, ``dvc pull``, and every file comes back byte-identical.

The remote is configured with the dvc CLI exactly as a user would (``dvc remote add -d storage
s3://BUCKET/tunelab`` and ``dvc remote modify storage endpointurl ...``), with credentials from
the AWS environment variables. Needs ``dvc-s3`` and ``moto[server]``; skips without them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

moto_server = pytest.importorskip("moto.server", reason="moto not installed (pip install 'moto[server]')")
pytest.importorskip("dvc_s3", reason="dvc-s3 not installed (pip install dvc-s3)")
boto3 = pytest.importorskip("boto3", reason="boto3 not installed (comes with dvc-s3 / moto)")

BUCKET = "tunelab-dvc-test"
PREFIX = "tunelab"


@pytest.fixture
def s3_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with an empty bucket ``BUCKET``; yields its endpoint URL.

    The env is isolated: dummy AWS credentials, no user profile/config, no proxy for localhost,
    and DVC's global/system config and site cache in tmp dirs, so nothing outside leaks in.
    """
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for var, name in (("DVC_GLOBAL_CONFIG_DIR", "dvc-global"), ("DVC_SYSTEM_CONFIG_DIR", "dvc-system"),
                      ("DVC_SITE_CACHE_DIR", "dvc-site-cache")):
        (tmp_path / name).mkdir()
        monkeypatch.setenv(var, str(tmp_path / name))

    caplog.set_level(logging.WARNING, logger="werkzeug")  # no access log of every S3 request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command in ``cwd``; fail the test with its stdout/stderr if it fails."""
    try:
        return subprocess.run(list(args), cwd=cwd, check=True, capture_output=True, text=True, timeout=120)
    except subprocess.CalledProcessError as err:
        pytest.fail(f"`{' '.join(args)}` exited {err.returncode}\n--- stdout ---\n{err.stdout}"
                    f"\n--- stderr ---\n{err.stderr}")


def _dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The venv's dvc (``python -m dvc``), so the installed dvc-s3 plugin is the one used."""
    return _run(cwd, sys.executable, "-m", "dvc", *args)


def _sha256s(root: Path, paths: list[str]) -> dict[str, str]:
    """sha256 of every file under each of ``paths`` (files or directories), keyed by relative path."""
    digests = {}
    for rel in paths:
        p = root / rel
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            digests[f.relative_to(root).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return digests


def _make_data(repo: Path) -> list[str]:
    """Real-ish tracked data: a compressed .npz, and a directory with a MIDI file and a JSON."""
    data = repo / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.savez_compressed(data / "features.npz", tokens=rng.integers(0, 128, size=(64, 32), dtype=np.int16),
                        velocities=rng.random((64, 32), dtype=np.float32))

    midi_dir = data / "midi"
    midi_dir.mkdir()
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="piano")
    for i, pitch in enumerate((60, 62, 64, 65, 67, 69, 71, 72)):
        piano.notes.append(pretty_midi.Note(velocity=80 + i, pitch=pitch, start=0.5 * i, end=0.5 * i + 0.45))
    pm.instruments.append(piano)
    pm.write(str(midi_dir / "scale.mid"))
    (midi_dir / "meta.json").write_text('{"title": "C major scale", "tempo": 120}\n')
    return ["data/features.npz", "data/midi"]


def test_dvc_push_pull_roundtrip_through_s3(tmp_path: Path, s3_endpoint: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _run(repo, "git", "init", "-q")
    _dvc(repo, "init", "-q")

    tracked = _make_data(repo)
    before = _sha256s(repo, tracked)
    assert len(before) == 3, before
    _dvc(repo, "add", *tracked)

    # What a user types: a default remote on S3, pointed at the (here: local moto) endpoint.
    _dvc(repo, "remote", "add", "-d", "storage", f"s3://{BUCKET}/{PREFIX}")
    _dvc(repo, "remote", "modify", "storage", "endpointurl", s3_endpoint)
    config = (repo / ".dvc" / "config").read_text()
    assert f"s3://{BUCKET}/{PREFIX}" in config and "remote = storage" in config, config

    cache = repo / ".dvc" / "cache"
    cached = sorted(f.relative_to(cache).as_posix() for f in cache.rglob("*") if f.is_file())
    # 3 files + the directory's .dir manifest.
    assert len(cached) == 4 and any(c.endswith(".dir") for c in cached), cached

    _dvc(repo, "push")

    # The objects really are in the bucket, under the remote's prefix, at the cache's layout.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    in_bucket = {obj["Key"] for page in pages for obj in page.get("Contents", [])}
    missing = {f"{PREFIX}/{c}" for c in cached} - in_bucket
    assert not missing, f"pushed objects missing from s3://{BUCKET}: {sorted(missing)}; it has {in_bucket}"

    # Lose everything local but the .dvc files: the cache and the workspace copies.
    shutil.rmtree(cache)
    for rel in tracked:
        p = repo / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert not any((repo / rel).exists() for rel in tracked)

    _dvc(repo, "pull")

    after = _sha256s(repo, tracked)
    assert after == before, f"pulled files differ from the pushed ones:\nbefore={before}\nafter={after}"
    assert pretty_midi.PrettyMIDI(str(repo / "data/midi/scale.mid")).instruments[0].notes[0].pitch == 60
    status = _dvc(repo, "status", "--cloud", "--json")
    assert json.loads(status.stdout) == {}, f"cache and remote out of sync: {status.stdout}"
