"""Music Transformer through the CLI on real corpora: performance generation and
continuation (children), the JSB voice-grid comparison, accompaniment (JSB S -> A T B)."""

from __future__ import annotations

import json

import mido
import numpy as np
import pretty_midi
import pytest

from conftest import TINY_TRANSFORMER, tiny_overrides
from tunelab.cli import main
from tunelab.music.midi_io import write_midi
from tunelab.music.score import Note, Score, Track


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("mt")
    common = [*tiny_overrides(tmp, net=()), f"corpus.mirror={mirror}"]
    for corpus in ("children", "jsb"):
        for verb in ("download", "extract"):
            assert main([verb, *common, f"corpus={corpus}"]) == 0, (verb, corpus)
    return tmp, [*common, *TINY_TRANSFORMER]  # every use below names a Transformer model


def _stages(base: list[str], *overrides: str) -> None:
    for verb in ("tokenize", "train", "sample", "evaluate"):
        assert main([verb, *base, *overrides]) == 0, (verb, overrides)


def _notes(path) -> list[tuple[float, float, int]]:
    pm = pretty_midi.PrettyMIDI(str(path))
    return sorted((round(n.start, 2), round(n.end, 2), n.pitch) for i in pm.instruments for n in i.notes)


def test_performance_model_trains_samples_and_evaluates(run):
    tmp, base = run
    _stages(base, "model=music_transformer", "corpus=children")
    metrics = json.loads((tmp / "reports/metrics/music_transformer-children.json").read_text())
    assert metrics["encoding"] == "performance"
    assert 0 < metrics["valid"]["nll_per_step"] < np.log(388) + 1
    assert metrics["test"]["windows"] >= metrics["test"]["sequences"]  # read in seq_len pieces
    assert metrics["samples"]["count"] == 2 and metrics["test_pieces"]["count"] > 0
    for path in sorted((tmp / "samples/music_transformer-children").glob("*.mid")):
        mido.MidiFile(path)  # standard MIDI


def test_continuation_keeps_the_primer(run, tmp_path):
    tmp, base = run
    notes = (Note(0, 4, 60, 80), Note(4, 8, 64, 80), Note(8, 12, 67, 80), Note(12, 16, 72, 80))
    primer = write_midi(Score("primer", (Track("melody", notes),)), tmp_path / "primer.mid")
    args = [*base, "model=music_transformer", "corpus=children", f"sample.primer_midi={primer}",
            f"paths.samples={tmp_path}/out"]
    assert main(["sample", *args]) == 0
    want = _notes(primer)
    outputs = sorted((tmp_path / "out/music_transformer-children").glob("*.mid"))
    assert len(outputs) == 2
    for path in outputs:
        # The primer's notes come back unchanged; only the last may be held longer, since
        # its note-off is the first thing the model may move.
        got = _notes(path)
        assert got[:3] == want[:3]
        assert got[3][:1] + got[3][2:] == want[3][:1] + want[3][2:] and got[3][1] >= want[3][1]


def test_jsb_grid_models_and_the_paper_table(run):
    tmp, base = run
    for model in ("transformer_baseline", "music_transformer", "music_transformer_local"):
        _stages(base, f"model={model}", "corpus=jsb", "model.encoding=voice_grid",
                "model.net.block_size=8" if model.endswith("local") else "model.seq_len=32")
    assert main(["tables", *base, "model=music_transformer"]) == 0
    rows = json.loads((tmp / "reports/tables/music_transformer_jsb.json").read_text())
    by_model = {r["model"]: r for r in rows}
    assert by_model["transformer_baseline"]["published_valid_nll"] == 0.417
    assert all(by_model[m]["valid_nll"] > 0 for m in ("transformer_baseline", "music_transformer"))
    table = (tmp / "reports/tables/music_transformer_jsb.md").read_text()
    assert "0.357" in table and "CPU-sized" in table
    # four voices per 16th step: samples decode to four-part MIDI
    pm = pretty_midi.PrettyMIDI(str(tmp / "samples/music_transformer-jsb/sample_00.mid"))
    assert [i.name for i in pm.instruments] == ["S", "A", "T", "B"]


def test_accompaniment_model_and_accompany_verb(run, tmp_path):
    tmp, base = run
    _stages(base, "model=music_transformer_accompaniment", "corpus=jsb")
    metrics = json.loads((tmp / "reports/metrics/music_transformer_accompaniment-jsb.json").read_text())
    assert metrics["encoding"] == "voice_events" and "ngram_baseline" not in metrics
    sample = pretty_midi.PrettyMIDI(str(tmp / "samples/music_transformer_accompaniment-jsb/sample_00.mid"))
    assert [i.name for i in sample.instruments] == ["S", "A", "T", "B"]

    tune = (Note(0, 8, 67, 90), Note(8, 16, 69, 90), Note(16, 32, 71, 90))
    melody = write_midi(Score("tune", (Track("lead", tune),), qpm=100.0), tmp_path / "tune.mid")
    assert main(["accompany", str(melody), *base, "corpus=jsb"]) == 0
    out = pretty_midi.PrettyMIDI(str(tmp_path / "tune_accompanied.mid"))
    assert [i.name for i in out.instruments] == ["lead", "A", "T", "B"]
    lead = [(n.pitch, round(n.start, 3)) for n in out.instruments[0].notes]
    assert lead == [(67, 0.0), (69, 1.2), (71, 2.4)]  # the melody is kept as written, at 100 qpm


def test_accompaniment_on_a_corpus_without_voices_is_a_config_error(run, capsys):
    _, base = run
    assert main(["train", *base, "model=music_transformer_accompaniment", "corpus=children"]) == 2
    err = capsys.readouterr().err.strip()
    assert "accompaniment" in err and "\n" not in err


def test_bad_sampling_values_are_config_errors(run, capsys):
    _, base = run
    assert main(["sample", *base, "model=music_transformer", "corpus=children", "sample.top_p=1.5"]) == 2
    assert "sample.top_p" in capsys.readouterr().err


def test_musenet_joint_model_generates_each_style(run, tmp_path, capsys):
    tmp, base = run
    joint = [*base, "model=musenet", "styles=[children,jsb]", "model.seq_len=48", "model.net.max_len=128",
             "sample.num_tokens=40"]
    for corpus in ("children", "jsb"):
        assert main(["tokenize", *joint, f"corpus={corpus}"]) == 0
    for verb in ("train", "sample", "evaluate"):
        assert main([verb, *joint]) == 0, verb
    metrics = json.loads((tmp / "reports/metrics/musenet-joint.json").read_text())
    assert set(metrics["styles"]) == {"children", "jsb"} and metrics["test"]["nll_per_step"] > 0
    for style in metrics["styles"].values():  # each style beside an n-gram fitted to that style alone
        ngram = style["ngram_baseline"]
        assert ngram["order"] in (2, 3) and ngram["nll_per_step"] > 0
        assert style["beats_baseline"] == (style["test"]["nll_per_step"] < ngram["nll_per_step"])
    assert metrics["style_classifier"]["test"]["accuracy"] > 0.8  # real pieces are told apart
    assert set(metrics["style_adherence"]["per_style"]) == {"children", "jsb"}
    names = sorted(p.name for p in (tmp / "samples/musenet-joint").glob("*.mid"))
    assert names == ["children_00.mid", "children_01.mid", "jsb_00.mid", "jsb_01.mid"]

    out = [*joint, "style=jsb", "instruments=[strings,bass]", f"paths.samples={tmp_path}"]
    assert main(["generate", *out]) == 0
    for path in (tmp_path / "musenet-joint").glob("*.mid"):  # only the asked-for instruments play
        assert {i.program for i in pretty_midi.PrettyMIDI(str(path)).instruments} <= {40, 32}
    notes = (Note(0, 4, 60, 80), Note(4, 8, 64, 80), Note(8, 16, 67, 80))
    primer = write_midi(Score("primer", (Track("melody", notes),)), tmp_path / "primer.mid")
    cont = [*joint, "style=children", f"sample.primer_midi={primer}", f"paths.samples={tmp_path}/cont"]
    assert main(["generate", *cont]) == 0
    for path in (tmp_path / "cont/musenet-joint").glob("*.mid"):  # the primer's notes open each piece
        assert _notes(path)[:2] == _notes(primer)[:2]
    assert main(["generate", *joint, "style=bach"]) == 2
    assert "style=bach" in capsys.readouterr().err
    assert main(["generate", *joint, "style=jsb", "instruments=[kazoo]"]) == 2
    assert "kazoo" in capsys.readouterr().err
