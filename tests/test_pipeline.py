"""End to end through the CLI on a real corpus: download -> ... -> evaluate, in tmp paths."""

from __future__ import annotations

import json

import mido
import pytest
import torch

from conftest import tiny_overrides
from tunelab.checkpoint import CheckpointMismatchError, load_checkpoint
from tunelab.cli import main
from tunelab.config import load_config
from tunelab.paths import model_dir


@pytest.fixture(scope="module")
def children_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    args = [*tiny_overrides(tmp), "corpus=children"]
    for verb in ("download", "extract", "tokenize", "train", "sample", "evaluate"):
        assert main([verb, *args]) == 0, verb
    return tmp, args


def test_every_stage_writes_its_outputs(children_run):
    tmp, _ = children_run
    run = "melody_rnn_basic-children"
    assert (tmp / "data/raw/children/manifest.json").is_file()
    stats = json.loads((tmp / "data/interim/children/stats.json").read_text())
    assert stats["pieces"] == 213 and stats["melodies"] > 100
    tok = json.loads((tmp / "data/processed/children/melody_onehot/stats.json").read_text())
    assert tok["vocab_size"] == 38 and tok["roundtrip_failures"] == 0
    assert (tmp / f"models/{run}/model.ckpt").is_file()
    metrics = json.loads((tmp / f"reports/metrics/{run}.json").read_text())
    assert 0 < metrics["test"]["nll_per_step"] < 10 and metrics["samples"]["count"] == 2


def test_samples_are_playable_midi_with_the_primer(children_run):
    tmp, _ = children_run
    for path in sorted((tmp / "samples/melody_rnn_basic-children").glob("*.mid")):
        mf = mido.MidiFile(path)  # parses as standard MIDI
        ons = [m for m in mf.tracks[-1] if m.type == "note_on" and m.velocity > 0]
        assert ons and ons[0].note == 60  # the primer [60] opens every sample


def test_checkpoint_loads_on_cpu_and_rejects_other_models(children_run):
    tmp, args = children_run
    cfg = load_config(args)
    net, payload = load_checkpoint(model_dir(cfg) / "model.ckpt", expect_model="melody_rnn_basic")
    assert payload["config"]["corpus"]["name"] == "children" and len(payload["vocab"]) == 38
    assert all(p.device == torch.device("cpu") for p in net.parameters())
    with pytest.raises(CheckpointMismatchError, match="not the requested 'music_vae'"):
        load_checkpoint(model_dir(cfg) / "model.ckpt", expect_model="music_vae")


def test_sampling_is_repeatable_with_a_seed(children_run, tmp_path):
    tmp, args = children_run
    first = [p.read_bytes() for p in sorted((tmp / "samples/melody_rnn_basic-children").glob("*.mid"))]
    assert main(["sample", *args]) == 0
    again = [p.read_bytes() for p in sorted((tmp / "samples/melody_rnn_basic-children").glob("*.mid"))]
    assert first == again


def test_killed_training_leaves_previous_model(children_run, monkeypatch):
    tmp, args = children_run
    ckpt = tmp / "models/melody_rnn_basic-children/model.ckpt"
    before = ckpt.read_bytes()

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("lightning.Trainer.fit", killed)
    assert main(["train", *args]) == 130
    assert ckpt.read_bytes() == before
    assert sorted(p.name for p in (tmp / "models").iterdir()) == ["melody_rnn_basic-children"]


def test_stage_error_is_one_line_and_nonzero(children_run, capsys):
    tmp, args = children_run
    assert main(["train", *args, "corpus=jazz"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tunelab train: error:") and "tokenize" in err and "\n" not in err


def test_sigterm_during_training_leaves_no_half_written_output(children_run, monkeypatch):
    import os
    import signal

    tmp, args = children_run
    ckpt = tmp / "models/melody_rnn_basic-children/model.ckpt"
    before = ckpt.read_bytes()

    def terminated(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)  # what a spot instance or `kill` sends

    monkeypatch.setattr("lightning.Trainer.fit", terminated)
    try:
        assert main(["train", *args]) == 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert ckpt.read_bytes() == before
    assert sorted(p.name for p in (tmp / "models").iterdir()) == ["melody_rnn_basic-children"]


def _own_models(children_run, tmp_path):
    """A copy of the trained model folder, so a test may damage it."""
    import shutil

    tmp, args = children_run
    shutil.copytree(tmp / "models", tmp_path / "models")
    return [*args, f"paths.models={tmp_path / 'models'}", f"paths.samples={tmp_path / 'samples'}"]


@pytest.mark.parametrize("damage", ["flip_weight", "flip_byte", "empty", "text"])
def test_damaged_checkpoint_is_refused_in_one_line(children_run, tmp_path, capsys, damage):
    args = _own_models(children_run, tmp_path)
    ckpt = tmp_path / "models/melody_rnn_basic-children/model.ckpt"
    if damage == "flip_weight":  # one weight changed, the stored digest kept
        payload = torch.load(ckpt, weights_only=False)
        name = next(iter(payload["state_dict"]))
        payload["state_dict"][name].view(-1)[0] += 1.0
        torch.save(payload, ckpt)
    elif damage == "flip_byte":  # one byte of the file, in the middle of the weights' data
        data = bytearray(ckpt.read_bytes())
        data[len(data) // 2] ^= 0xFF
        ckpt.write_bytes(bytes(data))
    else:
        ckpt.write_text("" if damage == "empty" else "these are not weights\n")
    assert main(["sample", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tunelab sample: error:") and str(ckpt) in err and "\n" not in err
    assert not (tmp_path / "samples").exists()  # nothing sampled from corrupted weights


def test_outputs_get_the_users_umask_and_stale_temp_folders_go(children_run, tmp_path):
    import os

    args = _own_models(children_run, tmp_path)
    samples = tmp_path / "samples"
    stale = samples / ".melody_rnn_basic-children.999999999.abcd"  # a killed run's (no such pid)
    live = samples / f".melody_rnn_basic-children.{os.getpid()}.efgh"  # a running writer's
    stale.mkdir(parents=True)
    live.mkdir()
    old = os.umask(0o022)
    try:
        assert main(["sample", *args]) == 0
    finally:
        os.umask(old)
    assert not stale.exists() and live.exists()
    for f in (*(samples / "melody_rnn_basic-children").glob("*.mid"),
              tmp_path / "models/melody_rnn_basic-children/model.ckpt"):
        assert f.stat().st_mode & 0o777 == 0o644, f


def test_an_empty_test_split_is_an_error_not_a_perfect_score(children_run, tmp_path, capsys):
    import numpy as np

    tmp, args = children_run
    data = tmp_path / "data"
    import shutil

    shutil.copytree(tmp / "data", data)
    folder = data / "processed/children/melody_onehot"
    np.save(folder / "test.tokens.npy", np.zeros(0, np.int16))
    np.save(folder / "test.offsets.npy", np.zeros(1, np.int64))
    reports = tmp_path / "reports"
    assert main(["evaluate", *args, f"paths.data={data}", f"paths.reports={reports}"]) == 1
    err = capsys.readouterr().err.strip()
    assert "the test split holds no pieces" in err and "split.test" in err and "\n" not in err
    assert not (reports / "metrics").exists()
