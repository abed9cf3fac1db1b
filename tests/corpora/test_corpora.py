"""Each corpus parses into the data model with its voices, grid and split intact."""

from __future__ import annotations

import json
from types import SimpleNamespace

import mido
import pytest

from tunelab.corpora import bach, children, corpus_module, jazz, jsb, split_of
from tunelab.music.music21_io import score_from_music21
from tunelab.pipeline.extract import extract

SETTINGS = SimpleNamespace(steps_per_quarter=4)


def test_bach_chorale_has_satb_voices(tmp_path):
    src = next(p for p in bach._source_files() if p.name == "bwv1.6.mxl")
    (tmp_path / src.name).write_bytes(src.read_bytes())
    [parsed] = list(corpus_module("bach").read(tmp_path, SETTINGS))
    assert [t.name for t in parsed.score.tracks] == ["S", "A", "T", "B"]  # horn doubling left out
    soprano = parsed.score.track("S").notes
    # bwv1.6 opens with a one-beat pickup: padded so the first downbeat is step 16
    assert soprano[0].start == 12 and soprano[1].start == 16


def test_abc_pickup_and_ties():
    import music21

    abc = "X:1\nT:pickup\nM:4/4\nL:1/4\nK:C\nG | c2 d e- | e4 |]\n"
    m21 = music21.converter.parse(abc, format="abc")
    score = score_from_music21(m21, "t", 4, [(m21.parts[0], "melody")])
    notes = [(n.pitch, n.start, n.end) for n in score.tracks[0].notes]
    # G pickup on beat 4 of bar 0; c half, d quarter, then e tied across the bar = 5 beats
    assert notes == [(67, 12, 16), (72, 16, 24), (74, 24, 28), (76, 28, 48)]


def test_children_tunes_parse():
    path = children._source_files()[0]
    assert path.name == "kinder0.abc"


def test_jazz_solo_on_annotated_grid(tmp_path, mirror):
    download_dir = tmp_path / "raw"
    download_dir.mkdir()
    jazz.fetch(download_dir, SimpleNamespace(mirror_path=mirror))
    score = jazz.solo_to_score(download_dir / "mcsv_melody/ArtPepper_Anthropology_FINAL.csv",
                               download_dir / "mcsv_beat/ArtPepper_Anthropology_FINAL_beattrack.csv", 4)
    # beat track starts at bar -1 beat 1; the solo's first note is bar 0 beat 1 tatum 1 -> beat 4
    # the second is bar 0 beat 2 tatum 1 of 4 -> beat 5
    solo = score.track("solo").notes
    assert (solo[0].start, solo[0].pitch) == (16, 65) and (solo[1].start, solo[1].pitch) == (20, 63)
    assert score.chords[0].figure == "NC" and score.chords[1].figure == "Bb6"
    assert score.track("bass").notes[0].pitch == 42 and score.qpm > 100


def test_jsb_keeps_official_split(tmp_path, mirror):
    jsb.fetch(tmp_path, SimpleNamespace(mirror_path=mirror))
    parsed = list(corpus_module("jsb").read(tmp_path, SETTINGS))
    splits = [p.score.meta["split"] for p in parsed]
    assert {s: splits.count(s) for s in ("train", "valid", "test")} == {"train": 229, "valid": 76, "test": 77}
    assert [t.name for t in parsed[0].score.tracks] == ["S", "A", "T", "B"]


def test_split_is_deterministic_by_piece():
    ids = [f"piece{i}" for i in range(2000)]
    splits = [split_of(i, 0.1, 0.1) for i in ids]
    assert splits == [split_of(i, 0.1, 0.1) for i in ids]
    assert 0.07 < splits.count("test") / 2000 < 0.13


def test_midi_dir_skips_and_records_bad_files(tiny_cfg, tmp_path):
    folder = tmp_path / "mine" / "nested"
    folder.mkdir(parents=True)
    mf = mido.MidiFile()
    track = mido.MidiTrack()
    for p in [60, 62, 64, 65, 67, 69, 71, 72] * 4:  # 8 bars of quarter notes
        track += [mido.Message("note_on", note=p, velocity=80, time=0),
                  mido.Message("note_off", note=p, velocity=0, time=480)]
    mf.tracks.append(track)
    mf.save(folder / "scale.mid")
    (folder / "broken.MID").write_bytes(b"garbage")
    (folder / "empty.midi").write_bytes(b"")
    cfg = tiny_cfg("corpus=midi_dir", f"corpus.path={tmp_path / 'mine'}", "corpus.name=mine")
    stats = extract(cfg)  # copies the folder into data/raw/mine/ itself
    assert stats["pieces"] == 1 and stats["melodies"] == 1
    assert stats["skipped"] == {"nested/broken.MID": "not a MIDI file (no MThd header)",
                                "nested/empty.midi": "empty file"}
    saved = json.loads((tmp_path / "data/interim/mine/stats.json").read_text())
    assert saved["skipped_files"] == 2
    manifest = json.loads((tmp_path / "data/raw/mine/manifest.json").read_text())
    assert manifest["file_count"] == 3 and "nested/scale.mid" in manifest["sha256"]


def _scale(path, pitches=(60, 62, 64, 65, 67, 69, 71, 72)):
    mf = mido.MidiFile()
    track = mido.MidiTrack()
    for p in list(pitches) * 4:  # 8 bars of quarter notes
        track += [mido.Message("note_on", note=p, velocity=80, time=0),
                  mido.Message("note_off", note=p, velocity=0, time=480)]
    mf.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.save(path)


def test_midi_dir_copy_follows_corpus_path(tiny_cfg, tmp_path):
    """Changed, added or removed files and another folder are noticed; an empty folder fails."""
    a, b = tmp_path / "a", tmp_path / "b"
    _scale(a / "one.mid")
    cfg = tiny_cfg("corpus=midi_dir", f"corpus.path={a}", "corpus.name=mine")
    assert extract(cfg)["pieces"] == 1
    _scale(a / "two.mid", (62, 64, 65, 67, 69, 71, 72, 74))  # added
    assert extract(cfg)["pieces"] == 2
    _scale(a / "two.mid", (64, 65, 67, 69, 71, 72, 74, 76))  # changed
    manifest = json.loads((tmp_path / "data/raw/mine/manifest.json").read_text())
    extract(cfg)
    assert json.loads((tmp_path / "data/raw/mine/manifest.json").read_text())["sha256"] != manifest["sha256"]
    (a / "one.mid").unlink()  # removed
    assert extract(cfg)["pieces"] == 1
    _scale(b / "x.mid")
    _scale(b / "y.mid", (62, 64, 65, 67, 69, 71, 72, 74))
    _scale(b / "z.mid", (64, 65, 67, 69, 71, 72, 74, 76))
    other = tiny_cfg("corpus=midi_dir", f"corpus.path={b}", "corpus.name=mine")  # another folder
    assert extract(other)["pieces"] == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"corpus.path={empty} holds no .mid/.midi files"):
        extract(tiny_cfg("corpus=midi_dir", f"corpus.path={empty}", "corpus.name=mine"))
    assert extract(other)["pieces"] == 3  # the failed copy left the last good one


def test_extract_without_download_says_what_to_run(tiny_cfg):
    with pytest.raises(FileNotFoundError, match="tunelab download corpus=children"):
        extract(tiny_cfg("corpus=children"))
