"""MusicVAE through the CLI on real corpora: every variant trains, samples and evaluates;
`tunelab vae` interpolates and applies attribute vectors; bad input fails in one line."""

from __future__ import annotations

import json

import mido
import pretty_midi
import pytest

from conftest import tiny_overrides
from tunelab.cli import main
from tunelab.music.midi_io import write_midi
from tunelab.music.score import Note, Score, Track

TINY_VAE = ("model.net.z_size=8", "model.net.encoder_size=16", "model.net.decoder_size=16")
VARIANTS = [("music_vae_mel_2bar", "children"), ("music_vae_mel_16bar_hier", "jsb"),
            ("music_vae_mel_16bar_flat", "jsb"), ("music_vae_trio_16bar", "jsb")]


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("vae")
    common = [*tiny_overrides(tmp, net=()), f"corpus.mirror={mirror}"]
    for corpus in ("children", "jsb"):
        for verb in ("download", "extract"):
            assert main([verb, *common, f"corpus={corpus}"]) == 0, (verb, corpus)
    base = [*common, *TINY_VAE]
    for model, corpus in VARIANTS:
        for verb in ("tokenize", "train", "sample", "evaluate"):
            assert main([verb, *base, f"model={model}", f"corpus={corpus}"]) == 0, (verb, model)
    return tmp, base


@pytest.mark.parametrize("model,corpus", VARIANTS)
def test_each_variant_trains_samples_and_evaluates(run, model, corpus):
    tmp, _ = run
    m = json.loads((tmp / f"reports/metrics/{model}-{corpus}.json").read_text())
    for split in ("valid", "test"):
        r = m[split]
        assert r["windows"] > 0
        for key in ("accuracy_teacher_forced", "accuracy_sampled", "accuracy_greedy", "accuracy_majority"):
            assert 0 <= r[key] <= 1
        assert r["kl_bits_per_window"] >= 0 and r["elbo_per_window"] < 0
    assert ("paper_table_1" in m) == ("16bar" in model and "trio" not in model)
    files = sorted((tmp / f"samples/{model}-{corpus}").glob("*.mid"))
    assert len(files) == 2
    parts = 3 if "trio" in model else 1
    bars = 2 if "2bar" in model else 16
    for f in files:
        mido.MidiFile(f)
        pm = pretty_midi.PrettyMIDI(str(f))
        assert len(pm.instruments) <= parts
        assert max(n.end for i in pm.instruments for n in i.notes) <= bars * 2.0 + 1e-6  # 120 qpm


def _melody(path, pitches, step=4):
    notes = tuple(Note(i * step, i * step + step, p) for i, p in enumerate(pitches))
    return write_midi(Score(path.stem, (Track("melody", notes),)), path)


def test_interpolate_writes_steps_windows_and_a_piano_roll(run, tmp_path, capsys):
    _, base = run
    a = _melody(tmp_path / "a.mid", [60, 62, 64, 65, 67, 69, 71, 72])
    b = _melody(tmp_path / "b.mid", [72, 71, 69, 67, 65, 64, 62, 60] * 3, step=2)
    code = main(["vae", "interpolate", str(a), str(b), "--steps", "3", *base, "corpus=children"])
    assert code == 0
    out = tmp_path / "a_to_b.mid"
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 1000
    pm = pretty_midi.PrettyMIDI(str(out))
    assert pm.get_end_time() <= 3 * 4.0 + 1e-6  # 3 windows of 2 bars at 120 qpm
    assert str(out) in capsys.readouterr().out


def test_attribute_vector_moves_a_melody(run, tmp_path, capsys):
    _, base = run
    src = _melody(tmp_path / "tune.mid", [60, 64, 67, 72, 67, 64, 60, 55] * 2)
    code = main(["vae", "attribute", str(src), "--name", "note_density", "--amount", "2",
                 "--out", str(tmp_path / "denser.mid"), *base, "corpus=children"])
    assert code == 0
    assert (tmp_path / "denser.mid").is_file()
    assert "note_density:" in capsys.readouterr().out


def test_one_bar_or_empty_input_is_a_clear_error(run, tmp_path, capsys):
    _, base = run
    short = _melody(tmp_path / "short.mid", [60, 62, 64, 65])  # one bar
    b = _melody(tmp_path / "b.mid", [60, 62, 64, 65] * 4)
    assert main(["vae", "interpolate", str(short), str(b), *base, "corpus=children"]) == 1
    err = capsys.readouterr().err.strip()
    assert "short.mid" in err and "one bar or less" in err and len(err.splitlines()) == 1
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    assert main(["vae", "attribute", str(empty), "--name", "pitch_range", *base, "corpus=children"]) == 1
    err = capsys.readouterr().err.strip()
    assert "empty.mid" in err and len(err.splitlines()) == 1
    assert main(["vae", "attribute", str(b), "--name", "loudness", *base, "corpus=children"]) == 1
    assert "note_density" in capsys.readouterr().err


def test_trio_on_a_corpus_without_parts_and_wrong_arity_are_config_errors(run, capsys):
    _, base = run
    assert main(["train", *base, "model=music_vae_trio_16bar", "corpus=children"]) == 2
    assert "corpus.children.trio" in capsys.readouterr().err
    assert main(["vae", "interpolate", "only_one.mid", *base, "corpus=children"]) == 2
    assert "takes 2 MIDI file(s)" in capsys.readouterr().err
    assert main(["vae", "sample", *base, "model=music_transformer", "corpus=children"]) == 2


def test_table_1_comparison_quotes_the_paper_beside_ours(run):
    tmp, base = run
    assert main(["tables", *base, "model=music_vae_mel_2bar"]) == 0
    rows = json.loads((tmp / "reports/tables/music_vae_16bar.json").read_text())
    assert {(r["corpus"], r["model"]) for r in rows} == {
        (c, m) for c in ("bach", "jazz") for m in ("music_vae_mel_16bar_flat", "music_vae_mel_16bar_hier")}
    hier = next(r for r in rows if r["model"] == "music_vae_mel_16bar_hier")
    assert (hier["published_teacher_forced"], hier["published_sampled"]) == (0.919, 0.812)
    assert all(r["teacher_forced"] is None for r in rows)  # the fixture trained on jsb, not these
    assert "0.883" in (tmp / "reports/tables/music_vae_16bar.md").read_text()
