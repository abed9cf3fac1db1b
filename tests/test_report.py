"""The offline HTML report: sections from a small realistic tree, skipped samples, relative
links, determinism, atomic rebuilds; then the page in headless Chromium (no errors,
every image and audio loads, nothing leaves file://) with a screenshot for humans."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import matplotlib.pyplot as plt
import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, REQUIRE_TOOLS, require_tool, score_of, tiny_overrides
from tunelab.config import load_config
from tunelab.music.midi_io import write_midi
from tunelab.pipeline.report import build_report, fmt, markdown_to_html, pick
from tunelab.plotting import save_figure

ARTIFACTS = Path(os.environ.get("TUNELAB_TEST_ARTIFACTS", REPO / "test-artifacts"))


# Small metrics in the real shapes of each family (reports/metrics/*.json of `dvc repro`).
MELODY = {
    "encoding": "melody_onehot",
    "valid": {"nll_per_step": 0.71, "bits_per_step": 1.0243, "steps": 4797},
    "test": {"nll_per_step": 0.7083, "bits_per_step": 1.02187, "perplexity": 2.03, "steps": 32616},
    "ngram_baseline": {"order": 3, "k": 0.05, "nll_per_step": 1.07, "bits_per_step": 1.5411, "steps": 32616},
    "beats_baseline": True,
    "samples": {"count": 4, "pitch_range": 21.25, "scale_consistency": 0.905},
    "test_pieces": {"count": 156, "pitch_range": 13.36, "scale_consistency": 0.938},
    "relative": {"mean_oa": 0.73125},
    "novelty": {"copied_share": 0.0625},
}
VAE = {
    "encoding": "mel_2bar", "size": "CPU-sized",
    "valid": {"windows": 220, "accuracy_teacher_forced": 0.7838, "elbo_per_window": -35.4},
    "test": {"windows": 190, "accuracy_teacher_forced": 0.78371, "accuracy_sampled": 0.7115,
             "elbo_per_window": -35.55, "kl_bits_per_window": 17.59, "nll_bound_per_step": 1.111},
    "samples": {"count": 4, "pitch_range": 7.0},
    "test_pieces": {"count": 190, "pitch_range": 6.46},
}
MUSENET = {
    "encoding": "musenet",
    "styles": {s: {"test": {"nll_per_step": 2.0, "bits_per_step": b, "steps": 2487},
                   "samples": {"count": 4, "pitch_range": 25.25}}
               for s, b in (("bach", 3.4221), ("children", 2.564), ("jazz", 4.2362))},
    "valid": {"nll_per_step": 2.78, "bits_per_step": 4.0168, "steps": 120712},
    "test": {"nll_per_step": 2.81, "bits_per_step": 4.0514, "steps": 115538},
    "style_classifier": {"classes": ["bach", "children", "jazz"], "l2": 0.01},
    "style_adherence": {"overall": 0.5, "num_samples": 12,
                        "per_style": {"bach": {"share": 0.5}, "children": {"share": 0.0},
                                      "jazz": {"share": 1.0}}},
}
TABLE_MD = """# MusicVAE 16-bar melodies: flat vs hierarchical decoder, test windows

Paper: Roberts et al. 2018, Table 1 (their data, not ours). Ours: `dvc repro evaluate_vae`.

| corpus | decoder | paper: teacher-forced | ours: sampled | note |
|---|---|---|--:|---|
| bach | `music_vae_mel_16bar_flat` — flat LSTM decoder | 0.883 | 0.699 | <script>alert(1)</script> |
| jazz | `music_vae_mel_16bar_hier` — hierarchical | 0.919 | — | a \\| b |
"""


def _melody(pitches: list[int]) -> list[tuple[int, int, int]]:
    return [(p, 4 * k, 4 * k + 4) for k, p in enumerate(pitches)]


def make_tree(root: Path) -> Path:
    """reports/{metrics,tables,figures} and samples/ as the pipeline writes them."""
    reports, samples = root / "reports", root / "samples"
    for name, data in (("melody_rnn_basic-bach", MELODY), ("music_vae_mel_2bar-bach", VAE),
                       ("musenet-joint", MUSENET)):
        (reports / "metrics").mkdir(parents=True, exist_ok=True)
        (reports / "metrics" / f"{name}.json").write_text(json.dumps(data, indent=2))
    (reports / "tables").mkdir(parents=True)
    (reports / "tables" / "music_vae_16bar.md").write_text(TABLE_MD)
    fig, ax = plt.subplots(figsize=(4, 2.5), dpi=80)
    ax.plot([0, 1, 2], [3.0, 2.1, 1.7])
    save_figure(fig, reports / "figures" / "training_loss", (".png", ".svg"))
    (reports / "figures" / "index.json").write_text(json.dumps([
        {"file": "training_loss.png", "svg": "training_loss.svg", "title": "Training loss",
         "caption": "NLL per step of `melody_rnn_basic`."},
        {"file": "gone.png", "title": "Listed but never written"},
    ]))
    skipped = {"jsb_nll": "no reports/tables/music_transformer_jsb.json"}  # as the figures stage writes it
    (reports / "figures" / "skipped.json").write_text(json.dumps(skipped))
    tune = _melody([60, 62, 64, 65, 67, 65, 64, 62])
    for k in range(3):  # three samples: the config renders the first two
        write_midi(score_of([(p + k, s, e) for p, s, e in tune]),
                   samples / "melody_rnn_basic-bach" / f"sample_0{k}.mid")
    write_midi(score_of(_melody([72, 71, 69, 67]), _melody([48, 55, 52, 53]), names=("melody", "bass")),
               samples / "musenet-joint" / "bach_00.mid")
    (samples / "music_vae_mel_2bar-bach").mkdir(parents=True)
    (samples / "music_vae_mel_2bar-bach" / "sample_00.mid").write_bytes(b"MThd\x00\x00\x00\x06 truncated")
    write_midi(score_of(tune), samples / "music_vae_mel_2bar-bach" / "sample_01.mid")
    # an audio model's run (Jukebox): WAVs, no MIDI
    (samples / "jukebox-joint").mkdir(parents=True)
    t = np.arange(22050) / 22050
    sf.write(samples / "jukebox-joint" / "bach_00.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 22050,
             subtype="PCM_16")
    return root


def report_cfg(root: Path, *extra: str):
    return load_config([*tiny_overrides(root), "report.samples_per_run=2", "report.max_seconds=3", *extra])


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class _Checker(HTMLParser):
    """Balanced tags, unique ids, and every href/src collected."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
            "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        for key in ("href", "src"):
            if key in a:
                self.links.append((tag, a[key]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def check_html(text: str) -> _Checker:
    c = _Checker()
    c.feed(text)
    c.close()
    assert text.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert not c.errors and not c.stack, (c.errors, c.stack)
    assert len(c.ids) == len(set(c.ids)), "duplicate ids"
    return c


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    require_tool("fluidsynth", "apt-get install fluidsynth")
    root = make_tree(tmp_path_factory.mktemp("report"))
    index = build_report(report_cfg(root))
    assert index == root / "reports" / "index.html"
    return root


def test_report_has_every_section_and_its_assets(built):
    reports = built / "reports"
    text = (reports / "index.html").read_text(encoding="utf-8")
    c = check_html(text)
    for sid in ("metrics", "tables", "figures", "samples"):
        assert f'<section id="{sid}">' in text and f'href="#{sid}"' in text
    assert "Not produced yet" not in text
    # metrics: a row per run, MuseNet's styles as sub-rows, the new keys as columns, "—" where absent
    for run in ("melody_rnn_basic-bach", "music_vae_mel_2bar-bach", "musenet-joint"):
        assert f'id="run-{run}"' in text
    assert ">mean OA</th>" in text and ">0.731</td>" in text and ">copied share</th>" in text
    assert ">1.022</td>" in text and ">4.051</td>" in text  # melody, musenet
    assert ">3.422</td>" in text  # musenet's bach style
    row = re.search(r'<tr id="run-music_vae_mel_2bar-bach">.*?</tr>', text).group(0)
    assert ">—</td>" in row and ">0.784</td>" in row  # no bits/step; teacher-forced accuracy
    # paper table: converted, escaped, alignment kept
    assert 'id="table-music_vae_16bar"' in text and "<h3>MusicVAE 16-bar melodies" in text
    assert "<code>music_vae_mel_16bar_flat</code>" in text and "&lt;script&gt;" in text
    assert "<script" not in text and "a | b" in text
    # figure with its title, caption and SVG twin
    assert 'id="fig-training_loss"' in text and "Training loss" in text
    assert 'href="figures/training_loss.svg"' in text and text.count("<figure class=\"figure\"") == 1
    assert "missing: <code>gone.png</code>" in text
    assert "not drawn: <code>jsb_nll</code> — no reports/tables/music_transformer_jsb.json" in text
    # samples: two of three rendered, the corrupt one listed, never fatal
    site = reports / "site"
    for name in ("sample_00", "sample_01"):
        for sub, ext in (("audio", "wav"), ("rolls", "png"), ("midi", "mid")):
            assert (site / sub / "melody_rnn_basic-bach" / f"{name}.{ext}").is_file()
    assert not (site / "audio" / "melody_rnn_basic-bach" / "sample_02.wav").exists()
    assert (site / "audio" / "musenet-joint" / "bach_00.wav").is_file()
    assert (site / "audio" / "music_vae_mel_2bar-bach" / "sample_01.wav").is_file()
    assert sorted(p.name for p in site.rglob("*") if "music_vae" in p.as_posix() and p.is_file()) == \
        ["sample_01.mid", "sample_01.png", "sample_01.wav"]  # nothing of the corrupt one
    assert re.search(r"skipped: <code>music_vae_mel_2bar-bach/sample_00\.mid</code> — \S", text)
    assert text.count("<audio controls") == 5 and text.count('class="roll"') == 5
    # the audio model's WAV is played as it is, with a spectrogram and a WAV link
    assert (site / "audio" / "jukebox-joint" / "bach_00.wav").read_bytes() == \
        (built / "samples" / "jukebox-joint" / "bach_00.wav").read_bytes()
    assert 'alt="spectrogram of jukebox-joint/bach_00.wav"' in text
    # every link relative and present: the folder can be zipped and opened anywhere
    assert str(built) not in text
    for _, link in c.links:
        if link.startswith(("#", "data:")):
            continue
        assert not urlparse(link).scheme and not link.startswith("/"), link
        assert (reports / unquote(link)).is_file(), link
    assert {"script", "iframe"}.isdisjoint(c.tags)
    assert not [t for t, link in c.links if t == "link" and not link.startswith("data:")]  # no external CSS


def test_rebuild_is_byte_identical_and_atomic(fluidsynth, tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    cfg = report_cfg(root)
    index = build_report(cfg)
    first, site = index.read_bytes(), tree_digest(root / "reports" / "site")
    assert build_report(cfg).read_bytes() == first
    assert tree_digest(root / "reports" / "site") == site  # WAV and PNG bytes too

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("tunelab.pipeline.report.write_piano_roll", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_report(cfg)
    assert index.read_bytes() == first and tree_digest(root / "reports" / "site") == site
    left = sorted(p.name for p in (root / "reports").iterdir())
    assert left == ["figures", "index.html", "metrics", "site", "tables"]  # no temporary folders left


def test_empty_inputs_say_not_produced_yet(tmp_path):
    text = build_report(report_cfg(tmp_path)).read_text(encoding="utf-8")
    check_html(text)
    assert text.count("Not produced yet") == 4
    assert "<table" not in text and "<audio" not in text


def test_without_fluidsynth_the_page_keeps_rolls_and_midi(tmp_path, monkeypatch):
    root = make_tree(tmp_path)
    shutil.rmtree(root / "reports" / "metrics")
    (root / "reports" / "figures" / "index.json").unlink()  # falls back to figures/*.png by name
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    text = build_report(report_cfg(root)).read_text(encoding="utf-8")
    check_html(text)
    assert "No audio: fluidsynth is not installed" in text and "apt-get install fluidsynth" in text
    # only the audio model's WAV can still be played
    assert text.count("<audio") == 1 and "jukebox-joint/bach_00.wav" in text
    assert text.count('class="roll"') == 5
    assert 'id="fig-training_loss"' in text and "training loss" in text
    assert "Not produced yet: no <code>reports/metrics/*.json</code>" in text


def test_pick_and_fmt():
    assert pick(MELODY, "relative.mean_oa") == 0.73125 and pick(MELODY, "relative.nope") is None
    assert pick(MELODY, "encoding.x") is None and pick(VAE, "test.windows") == 190
    assert [fmt(v) for v in (None, True, False, 32616, 1.02187, -364.21, 12345.6, [], ["a", 1])] == \
        ["—", "yes", "no", "32,616", "1.022", "-364.2", "12,346", "—", "a, 1"]


def test_markdown_tables():
    out = markdown_to_html(TABLE_MD)
    assert out.startswith("<h3>MusicVAE 16-bar melodies")
    assert "<th>corpus</th>" in out and '<td class="num">0.883</td>' in out
    assert '<td class="missing">—</td>' in out and "<td>a | b</td>" in out
    assert out.count("<tr>") == 3 and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<p>Paper: Roberts et al. 2018" in out and "<code>dvc repro evaluate_vae</code>" in out
    assert markdown_to_html("no table here\n\n- one\n- two") == \
        "<p>no table here</p>\n<ul><li>one</li><li>two</li></ul>"


def test_report_in_headless_chromium(built):
    chromium = require_tool("chromium", "apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRE_TOOLS:
            pytest.fail("TUNELAB_REQUIRE_BROWSER=1 but playwright is not installed: pip install -e '.[dev]'")
        pytest.skip("playwright not installed")
    reports = built / "reports"
    errors, requests, outside = [], [], []

    def route(r):
        if urlparse(r.request.url).scheme in ("file", "data"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((reports / "index.html").as_uri(), wait_until="load")
            page.wait_for_function(  # preload="metadata": each WAV's header is read after load
                "[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)",
                timeout=20000)
            images = page.evaluate("[...document.images].map(i => ({src: i.getAttribute('src'),"
                                   " ok: i.complete && i.naturalWidth > 0}))")
            audio = page.evaluate("[...document.querySelectorAll('audio')].map(a => ({"
                                  "src: a.querySelector('source').getAttribute('src'), ready: a.readyState,"
                                  " duration: a.duration, error: a.error && a.error.code}))")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert not outside and all(urlparse(u).scheme in ("file", "data") for u in requests), (outside, requests)
    assert len(images) == 6 and all(i["ok"] for i in images), images  # figure, 4 rolls, a spectrogram
    assert len(audio) == 5
    for a in audio:
        assert (reports / unquote(a["src"])).is_file(), a
        assert a["error"] is None and a["ready"] >= 1 and 0 < a["duration"] <= 3.5, a  # max_seconds=3
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
