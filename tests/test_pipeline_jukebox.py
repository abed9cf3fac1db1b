"""Jukebox through the CLI on real corpora (children's songs and JSB rendered to audio):
the VQ-VAE, the top-level prior and the upsampler train, `tunelab generate` writes WAVs of
the requested length and rate (continuing a primer), and the evaluation measures them."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from conftest import tiny_overrides
from tunelab.cli import main

STYLES = ("children", "jsb")
VQVAE = ("model.net.width=8", "model.net.depth=1", "model.net.codebook_size=32", "model.net.emb_width=16",
         "model.seq_len=2048", "model.batch_size=4")
PRIOR = ("model.net.codebook_size=32", "model.net.d_model=16", "model.net.num_layers=1",
         "model.net.num_heads=2", "model.net.d_ff=32", "model.batch_size=4")


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror, fluidsynth):
    tmp = tmp_path_factory.mktemp("jukebox")
    common = [*tiny_overrides(tmp, net=()), f"corpus.mirror={mirror}", "styles=[children,jsb]",
              "audio.seconds_per_piece=2", "audio.max_pieces=12"]
    for corpus in STYLES:
        for verb in ("download", "extract", "render_audio"):
            assert main([verb, *common, f"corpus={corpus}"]) == 0, (verb, corpus)
    assert main(["train", *common, "model=jukebox_vqvae", *VQVAE]) == 0
    assert main(["train", *common, "model=jukebox_prior", *PRIOR, "model.seq_len=16"]) == 0
    assert main(["train", *common, "model=jukebox_upsampler", *PRIOR, "model.net.cond_codebook_size=32",
                 "model.seq_len=64"]) == 0
    gen = [*(o for o in common if not o.startswith("model.")), "model=jukebox", "sample.num_outputs=1",
           "seconds=0.5"]  # the assembled model has no batch size or window of its own
    assert main(["generate", *gen]) == 0
    assert main(["evaluate", *gen]) == 0
    return tmp, gen


def test_generated_wavs_have_the_requested_length_and_rate(run):
    tmp, _ = run
    folder = tmp / "samples/jukebox-joint"
    for style in STYLES:
        audio, rate = sf.read(folder / f"{style}_00.wav")
        assert rate == 22050 and audio.ndim == 1
        assert len(audio) == round(0.5 * 22050)
    timing = json.loads((folder / "generation.json").read_text())
    assert timing["real_time_factor"] > 0 and set(timing["samples"]) == {f"{s}_00.wav" for s in STYLES}


def test_evaluation_reports_codes_priors_and_styles(run):
    tmp, _ = run
    m = json.loads((tmp / "reports/metrics/jukebox-joint.json").read_text())
    assert m["hop_lengths"] == [32, 256]
    for level in ("level_0", "level_1"):
        v = m["vqvae"][level]
        assert v["spectral_convergence"] >= 0 and v["multi_resolution_stft_distance"] >= 0
        assert 1 <= v["perplexity"] <= 32 and v["used"] + v["dead"] == 32
    for name in ("jukebox_prior", "jukebox_upsampler"):
        assert 0 < m["priors"][name]["bits_per_code"] < 20 and m["priors"][name]["windows"] > 0
    for style in STYLES:
        s = m["styles"][style]
        assert s["chroma_kl_to_own_style"] >= 0
        assert set(s["chroma_kl_to_other_styles"]) == set(STYLES) - {style}
    assert m["real_time_factor"] > 0


def test_generate_continues_a_primer(run, tmp_path):
    tmp, gen = run
    primer = sorted((tmp / "data/audio/children/train").glob("*.flac"))[0]
    n = len(sf.read(primer)[0]) // 256 * 256  # whole top-level codes of the primer
    out = tmp_path / "primed"
    assert main(["generate", *gen, f"paths.samples={out}", "style=children", "seconds=0.25",
                 f"sample.primer_audio={primer}"]) == 0
    audio, rate = sf.read(out / "jukebox-joint/children_00.wav")
    assert len(audio) == n + round(0.25 * 22050) and rate == 22050
    assert not (out / "jukebox-joint/jsb_00.wav").exists()


def test_bad_style_and_missing_models_fail_in_one_line(run, tmp_path, capsys):
    tmp, gen = run
    assert main(["generate", *gen, "style=nope"]) == 2
    assert "style=nope is not one of the model's styles" in capsys.readouterr().err
    assert main(["generate", *gen, f"paths.models={tmp_path}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run `tunelab train" in err
