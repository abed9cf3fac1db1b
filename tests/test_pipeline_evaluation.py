"""The reporting end of the pipeline on real corpora (children's songs and JSB), tiny models:
evaluate's new metrics, the W&B evaluation run read back from its offline file, the
cross-corpus matrix, figures, `tunelab compare`, the HTML report and the notebook."""

from __future__ import annotations

import json
import math
import os
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO, tiny_overrides
from tunelab.cli import main
from tunelab.tracking import read_offline_run

CORPORA = ("children", "jsb")


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("evaluation")
    common = [*tiny_overrides(tmp), f"corpus.mirror={mirror}", "pipeline.corpora=[children,jsb]",
              "pipeline.models=[melody_rnn_basic]"]
    for corpus in CORPORA:
        for verb in ("download", "extract", "tokenize", "train", "sample", "evaluate"):
            assert main([verb, *common, f"corpus={corpus}"]) == 0, (verb, corpus)
    assert main(["cross_corpus", *common]) == 0
    assert main(["figures", *common]) == 0
    return tmp, common


def test_evaluate_measures_samples_against_real_music(run):
    tmp, _ = run
    m = json.loads((tmp / "reports/metrics/melody_rnn_basic-children.json").read_text())
    for split in ("valid", "test"):
        r = m[split]
        assert r["notes"] > 0
        # bits per note = the split's total bits over its notes
        assert r["bits_per_note"] == pytest.approx(r["bits_per_step"] * r["steps"] / r["notes"])
    for side in ("samples", "test_pieces"):
        for key in ("pitch_range", "n_pitches_used", "polyphony", "polyphony_rate", "pitch_in_scale_rate",
                    "scale_consistency", "pitch_entropy", "pitch_class_entropy", "empty_beat_rate",
                    "groove_consistency"):
            assert key in m[side], (side, key)
    assert m["test_pieces"]["polyphony_rate"] == 0  # melodies
    rel = m["relative"]
    assert 0 <= rel["mean_oa"] <= 1
    assert {"pitch_range", "total_pitch_class_histogram", "avg_IOI"} <= set(rel)
    nov = m["novelty"]
    assert nov["samples"] == 2 and 0 <= nov["copied_share"] <= 1 and nov["bars"] == 2


def test_evaluation_run_is_logged_to_wandb_offline(run):
    tmp, common = run
    logs = tmp / "wandb_logs"
    assert main(["evaluate", *common, "corpus=children", "logger=wandb", f"paths.logs={logs}",
                 "logger.group=test-sweep"]) == 0
    (folder,) = sorted((logs / "wandb").glob("offline-run-*"))
    r = read_offline_run(folder)
    assert r["name"] == "melody_rnn_basic-children" and r["job_type"] == "evaluate"
    assert r["group"] == "test-sweep"
    assert r["config"]["model"]["name"] == "melody_rnn_basic"
    for key in ("test/nll_per_step", "test/bits_per_note", "relative/mean_oa", "novelty/copied_share",
                "samples/scale_consistency"):
        assert key in r["summary"], key
    assert "samples/piano_roll" in r["history_keys"]
    if shutil.which("fluidsynth"):
        assert "samples/audio" in r["history_keys"]


def test_cross_corpus_matrix(run):
    tmp, _ = run
    m = json.loads((tmp / "reports/cross_corpus/melody_rnn_basic.json").read_text())
    assert m["corpora"] == list(CORPORA)
    for a in CORPORA:
        for b in CORPORA:
            cell = m["matrix"][a][b]
            assert math.isfinite(cell["bits_per_step"]) and cell["bits_per_note"] > cell["bits_per_step"]
    # the diagonal is the evaluate stage's own test NLL
    own = json.loads((tmp / "reports/metrics/melody_rnn_basic-jsb.json").read_text())["test"]
    assert m["matrix"]["jsb"]["jsb"]["nll_per_step"] == pytest.approx(own["nll_per_step"])


def test_figures_are_written_skipped_honestly_and_deterministic(run):
    tmp, common = run
    figures = tmp / "reports/figures"
    index = {e["file"]: e for e in json.loads((figures / "index.json").read_text())}
    for name in ("metrics_table", "oa_per_feature", "training_curves", "cross_corpus",
                 "piano_rolls_children", "piano_rolls_jsb", "skewing_memory"):
        assert f"{name}.png" in index and (figures / f"{name}.svg").is_file(), name
        assert index[f"{name}.png"]["title"] and index[f"{name}.png"]["caption"]
    skipped = json.loads((figures / "skipped.json").read_text())
    # families that were not trained here are skipped, not drawn
    assert {"music_vae_16bar", "music_vae_interpolation", "music_transformer_jsb_nll"} <= set(skipped)
    before = {p.name: p.read_bytes() for p in figures.iterdir()}
    assert main(["figures", *common]) == 0
    assert {p.name: p.read_bytes() for p in figures.iterdir()} == before


def test_compare_side_by_side(run, capsys):
    tmp, common = run
    runs = ["melody_rnn_basic-children", "melody_rnn_basic-jsb"]
    assert main(["compare", *common, "--runs", *runs]) == 0
    md = (tmp / "reports/compare.md").read_text()
    assert md.splitlines()[0] == f"| key | {runs[0]} | {runs[1]} |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()[2:]}
    assert "corpus.name" in rows and "test/nll_per_step" in rows and "model.name" not in rows  # same
    assert (tmp / "reports/compare.csv").read_text().startswith("key,")
    assert md in capsys.readouterr().out
    assert main(["compare", *common, "--runs", "nope-bach"]) == 1
    assert "no run named nope-bach" in capsys.readouterr().err


def test_report_covers_every_run(run):
    tmp, common = run  # without fluidsynth the page still builds, with rolls and MIDI links
    assert main(["report", *common]) == 0
    html = (tmp / "reports/index.html").read_text()
    for r in ("melody_rnn_basic-children", "melody_rnn_basic-jsb"):
        assert r in html
    assert "metrics_table.png" in html


def test_notebook_regenerates_the_figures_headless(run):
    tmp, _ = run
    nb = nbformat.read(REPO / "notebooks/figures.ipynb", as_version=4)
    os.environ["TUNELAB_ROOT"] = str(tmp)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        del os.environ["TUNELAB_ROOT"]
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "2 evaluated runs" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
