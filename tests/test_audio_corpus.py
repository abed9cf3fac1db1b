"""The audio corpus stage: a real corpus rendered with fluidsynth through the CLI, a user's
folder of WAV/FLAC files (resampled, downmixed, corrupt and silent files skipped), and the
windows a Jukebox model trains and is evaluated on."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from conftest import tiny_overrides
from tunelab.cli import main
from tunelab.config import load_config
from tunelab.corpora import split_of
from tunelab.families.jukebox.audio_corpus import (
    _head,
    _read_file,
    _render_piece,
    _safe_id,
    _to_pcm16,
    audio_dir,
    audio_rate,
    consecutive_windows,
    load_audio_split,
    random_windows,
)
from tunelab.metrics.audio_metrics import chroma_histogram
from tunelab.music.audio import render_wav
from tunelab.music.midi_io import write_midi
from tunelab.music.score import Note, Score, Track, load_scores, save_scores
from tunelab.paths import interim_dir

RATE = 22050
KEEP = 30  # pieces of the children corpus rendered: every split, a few seconds per run


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def error_lines(capsys) -> list[str]:
    """What the CLI printed to stderr, less progress bars and log lines."""
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("tunelab ")]


@pytest.fixture(scope="module")
def children_audio(tmp_path_factory, mirror, fluidsynth):
    """children downloaded and extracted through the CLI, cut to KEEP pieces plus two
    silent ones (no notes; a note only after the cut), rendered at 1 s a piece."""
    tmp = tmp_path_factory.mktemp("audio")
    args = [*tiny_overrides(tmp), f"corpus.mirror={mirror}", "corpus=children", "audio.seconds_per_piece=1"]
    for verb in ("download", "extract"):
        assert main([verb, *args]) == 0, verb
    cfg = load_config(args)
    scores_file = tmp / "data/interim/children/scores.jsonl.gz"
    scores = load_scores(scores_file)[:KEEP]
    assert {s.meta["split"] for s in scores} == {"train", "valid", "test"}
    empty = Score(id="no notes/here", tracks=(Track("t", ()),), meta={"split": "train"})
    late = Score(id="late", tracks=(Track("t", (Note(16, 20, 60),)),), meta={"split": "test"})  # at 2 s
    save_scores(scores_file, [*scores, empty, late])
    assert main(["render_audio", *args]) == 0
    return cfg, scores


def test_rendered_corpus_is_flac_per_split_with_consistent_stats(children_audio):
    cfg, scores = children_audio
    out = audio_dir(cfg)
    stats = json.loads((out / "stats.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert stats["source"] == "rendered: fluidsynth + TimGM6mb" and stats["sample_rate"] == RATE
    # pickups: some tunes start with a rest of a second or more
    quiet = {s.id for s in scores if s.tracks[0].notes[0].start * s.seconds_per_step() >= 1}
    silent = "silent: no notes in the first 1 s"
    assert stats["skipped"] == {i: silent for i in {"late", "no notes/here", *quiet}}
    assert stats["pieces"] == len(manifest) == len(scores) - len(quiet)
    want_splits = {s.id: s.meta["split"] for s in scores if s.id not in quiet}
    assert {m["piece_id"]: m["split"] for m in manifest} == want_splits
    for split in ("train", "valid", "test"):
        rows = [m for m in manifest if m["split"] == split]
        assert stats["pieces_by_split"][split] == len(rows) > 0
        assert stats["seconds_by_split"][split] == pytest.approx(sum(m["seconds"] for m in rows), abs=1e-3)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.flac")) == [m["file"] for m in manifest]
    for m in manifest:
        info = sf.info(out / m["file"])
        assert (info.samplerate, info.channels, info.subtype, info.format) == (RATE, 1, "PCM_16", "FLAC")
        assert 0 < info.frames <= RATE and m["seconds"] == pytest.approx(info.frames / RATE)
        assert m["file"].startswith(f"{m['split']}/") and m["sample_rate"] == RATE
    assert audio_rate(out) == RATE


def test_load_audio_split_reads_float_mono_sorted(children_audio):
    cfg, scores = children_audio
    test = load_audio_split(audio_dir(cfg), "test")
    ids = [i for i, _ in test]
    manifest = json.loads((audio_dir(cfg) / "manifest.json").read_text())
    assert ids == sorted(m["piece_id"] for m in manifest if m["split"] == "test") and ids
    for _, x in test:
        assert x.dtype == np.float32 and x.ndim == 1 and 0 < x.size <= RATE
        assert 0.5 < np.abs(x).max() <= 1.0  # render_wav normalises the peak to -1 dBFS
    with pytest.raises(ValueError, match="one of train, valid, test"):
        load_audio_split(audio_dir(cfg), "dev")
    with pytest.raises(FileNotFoundError, match="tunelab render_audio corpus=bach"):
        load_audio_split(audio_dir(cfg).with_name("bach"), "train")


def test_a_second_render_writes_the_same_bytes(children_audio):
    cfg, _ = children_audio
    out = audio_dir(cfg)
    before = digest(out)
    args = [*tiny_overrides(Path(cfg.paths.data).parent), "corpus=children", "audio.seconds_per_piece=1"]
    assert main(["render_audio", *args]) == 0
    assert digest(out) == before


def test_render_without_extract_names_the_command(tmp_path, capsys):
    assert main(["render_audio", *tiny_overrides(tmp_path), "corpus=children"]) == 1
    err = error_lines(capsys)
    assert len(err) == 1 and "tunelab extract corpus=children" in err[0]


def test_missing_fluidsynth_is_fatal_with_the_install_hint(tmp_path, monkeypatch, capsys):
    args = [*tiny_overrides(tmp_path), "corpus=children"]
    one = Score(id="one", tracks=(Track("t", (Note(0, 4, 60),)),), meta={"split": "train"})
    save_scores(interim_dir(load_config(args)) / "scores.jsonl.gz", [one])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["render_audio", *args]) == 1
    err = error_lines(capsys)
    assert len(err) == 1 and "apt-get install fluidsynth" in err[0]


def test_rendering_only_the_head_gives_the_whole_pieces_samples(fluidsynth, tmp_path):
    # 24 quarter notes at 120 qpm (12 s), cut at 2.3 s: a note sounds across the cut
    notes = tuple(Note(4 * k, 4 * k + 6, 60 + k % 7) for k in range(24))
    score = Score(id="run", tracks=(Track("t", notes),))
    (tmp_path / "a").mkdir()
    whole = render_wav(write_midi(score, tmp_path / "a/whole.mid"), tmp_path / "a/whole.wav", RATE, 2.3)
    head = _render_piece(score, tmp_path, RATE, 2.3)
    np.testing.assert_array_equal(head, sf.read(whole, dtype="int16")[0])
    assert head.size == round(2.3 * RATE) and max(n.end for n in _head(score, 2.3).tracks[0].notes) < 24 * 4


# --- a user's folder of WAV/FLAC files ------------------------------------------------------

def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)


@pytest.fixture
def user_folder(tmp_path):
    src = tmp_path / "my wavs"
    (src / "sub").mkdir(parents=True)
    a440 = tone(440.0, 2.0, 44100)
    sf.write(src / "a440 stereo.wav", np.stack([a440, 0.5 * a440], axis=1), 44100, subtype="PCM_16")
    sf.write(src / "sub" / "c523.flac", tone(523.25, 0.5, 48000), 48000, subtype="PCM_24")
    (src / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    sf.write(src / "silent.wav", np.zeros(22050), 22050, subtype="PCM_16")
    (src / "notes.txt").write_text("not audio")
    return src


def folder_args(tmp_path: Path, src: Path) -> list[str]:
    return [*tiny_overrides(tmp_path), "corpus=midi_dir", f"corpus.path={src}", f"audio.source_dir={src}",
            "audio.seconds_per_piece=1"]


def test_user_folder_is_resampled_downmixed_cut_and_keeps_pitch(tmp_path, user_folder):
    args = folder_args(tmp_path, user_folder)
    assert main(["render_audio", *args]) == 0
    out = audio_dir(load_config(args))
    stats = json.loads((out / "stats.json").read_text())
    manifest = {m["piece_id"]: m for m in json.loads((out / "manifest.json").read_text())}
    assert stats["source"] == str(user_folder) and stats["pieces"] == 2
    assert set(manifest) == {"a440 stereo.wav", "sub/c523.flac"}
    assert set(stats["skipped"]) == {"corrupt.wav", "silent.wav"}
    assert stats["skipped"]["silent.wav"].startswith("silent: RMS 0 <")
    reason = stats["skipped"]["corrupt.wav"]
    assert reason and "\n" not in reason
    stems = {"a440 stereo.wav": "a440_stereo", "sub/c523.flac": "sub_c523"}
    for piece_id, m in manifest.items():
        assert m["split"] == split_of(piece_id, 0.1, 0.1)
        assert m["file"] == f"{m['split']}/{stems[piece_id]}.flac"
    a, rate = sf.read(out / manifest["a440 stereo.wav"]["file"], dtype="float32")
    assert rate == RATE and a.ndim == 1 and a.size == RATE  # 2 s at 44.1 kHz, cut to 1 s at 22.05 kHz
    assert np.abs(a).max() == pytest.approx(0.375, abs=0.01)  # mean of 0.5 and 0.25 amplitude channels
    spectrum = np.abs(np.fft.rfft(a * np.hanning(a.size)))
    assert np.fft.rfftfreq(a.size, 1 / RATE)[np.argmax(spectrum)] == pytest.approx(440.0, abs=1.5)
    assert int(np.argmax(chroma_histogram(a, RATE))) == 9
    c, rate = sf.read(out / manifest["sub/c523.flac"]["file"], dtype="float32")
    assert rate == RATE and c.size == RATE // 2  # 0.5 s: shorter than the cut, kept whole
    assert int(np.argmax(chroma_histogram(c, RATE))) == 0
    before = digest(out)
    assert main(["render_audio", *args]) == 0
    assert digest(out) == before


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_reading_only_the_head_resamples_like_the_whole_file(tmp_path, rate):
    x = np.random.default_rng(rate).uniform(-0.5, 0.5, (3 * rate, 2))
    sf.write(tmp_path / "x.wav", x, rate, subtype="FLOAT")
    ratio = Fraction(RATE, rate)
    mono = x.astype(np.float32).mean(axis=1, dtype=np.float64)  # the file holds float32
    whole = resample_poly(mono, ratio.numerator, ratio.denominator)
    np.testing.assert_array_equal(_read_file(tmp_path / "x.wav", RATE, 1.0), _to_pcm16(whole[:RATE]))


def test_missing_or_useless_folder_is_a_one_line_error(tmp_path, user_folder, capsys):
    args = folder_args(tmp_path, user_folder)
    missing = tmp_path / "nowhere"
    assert main(["render_audio", *args, f"audio.source_dir={missing}"]) == 1
    err = error_lines(capsys)
    assert len(err) == 1 and f"audio.source_dir={missing}" in err[0]
    useless = tmp_path / "useless"
    useless.mkdir()
    shutil.copy(user_folder / "silent.wav", useless)
    assert main(["render_audio", *args, f"audio.source_dir={useless}"]) == 1
    err = error_lines(capsys)
    assert len(err) == 1 and f"no usable audio in {useless}" in err[0] and "silent" in err[0]
    assert not audio_dir(load_config(args)).exists()  # nothing half-written


# --- ids and windows -------------------------------------------------------------------------

def test_safe_ids_are_file_names_and_unique():
    taken: set[str] = set()
    ids = [_safe_id(p, taken) for p in ("a/b", "a_b", "A_B", "x y.z", "..hidden", "ü")]
    assert ids[0] == "a_b" and ids[3] == "x_y.z" and ids[4] == "hidden" and ids[5] == "_"
    assert len({i.casefold() for i in ids}) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", i) for i in ids)


def test_random_windows_are_slices_or_zero_padded_and_seeded():
    pieces = [("long", np.arange(1000, dtype=np.float32)), ("short", np.full(30, -1.0, np.float32))]
    w = random_windows(pieces, 100, 64, np.random.default_rng(0))
    assert w.shape == (64, 100) and w.dtype == np.float32
    np.testing.assert_array_equal(w, random_windows(pieces, 100, 64, np.random.default_rng(0)))
    for row in w:
        if row[0] == -1.0:  # the short piece: itself, then zeros
            np.testing.assert_array_equal(row, np.r_[np.full(30, -1.0), np.zeros(70)])
        else:
            np.testing.assert_array_equal(row, np.arange(row[0], row[0] + 100))
    # drawn in proportion to start positions: 901 for the long piece, 1 for the short one
    many = random_windows([p for _, p in pieces], 100, 2000, np.random.default_rng(1))
    assert (many[:, 0] == -1.0).sum() < 20
    with pytest.raises(ValueError):
        random_windows([], 100, 4, np.random.default_rng(0))


def test_consecutive_windows_cover_every_whole_window():
    pieces = [np.arange(n, dtype=np.float32) for n in (250, 50, 100)]
    w = consecutive_windows(pieces, 100)
    assert w.shape == (3, 100) and w.dtype == np.float32
    np.testing.assert_array_equal(w, np.stack([np.arange(100), np.arange(100, 200), np.arange(100)]))
    assert consecutive_windows(pieces[1:2], 100).shape == (0, 100)
