"""MAESTRO and Lakh: tiny archives in the real layouts, served through the real fetch path
(a file:// URL or a mirror folder), checked against pinned sizes and sha256s, then read."""

from __future__ import annotations

import csv
import io
import json
import logging
import tarfile
import zipfile
from pathlib import Path

import mido
import pytest

from tunelab.cli import main
from tunelab.corpora import lakh, maestro, split_of
from tunelab.corpora.download import ChecksumMismatchError, DataUnavailableError, sha256_file
from tunelab.music.score import Note, load_scores
from tunelab.pipeline.extract import download, extract

TPQ = 384  # MAESTRO's files: 384 ticks per quarter at 120 qpm, so 0.5 s = 384 ticks = 50 steps


def midi_bytes(events: list[tuple[int, mido.Message]], tpq: int = TPQ) -> bytes:
    """One-track MIDI at 120 qpm from (absolute tick, message)."""
    mf = mido.MidiFile(type=1, ticks_per_beat=tpq)
    track, now = mido.MidiTrack(), 0
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def key(t0: int, t1: int, pitch: int, velocity: int) -> list[tuple[int, mido.Message]]:
    return [(t0, mido.Message("note_on", note=pitch, velocity=velocity)),
            (t1, mido.Message("note_off", note=pitch, velocity=0))]


def pedal(t: int, value: int) -> tuple[int, mido.Message]:
    return t, mido.Message("control_change", control=64, value=value)


def scale(first: int, velocity: int = 80) -> bytes:
    """Eight bars of quarter notes from ``first`` up a major scale."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12] * 4
    return midi_bytes([e for i, s in enumerate(steps)
                       for e in key(i * TPQ, (i + 1) * TPQ, first + s, velocity)])


# Three performances, one per official split; the test piece is pedalled:
# C4 (velocity 97) pressed 0-0.5 s, pedal down 0.25-2 s: C4 sounds to 2 s (step 200);
# E4 (velocity 31) at 1-1.25 s and struck again at 1.5-1.75 s: the first ends at the re-strike.
PEDALLED = midi_bytes([*key(0, 384, 60, 97), pedal(192, 127), *key(768, 960, 64, 31),
                       *key(1152, 1344, 64, 45), pedal(1536, 0), *key(2304, 2688, 67, 70)])
MAESTRO_ROWS = [  # canonical_composer, canonical_title, split, year, midi_filename
    ("Johann Sebastian Bach", "Prelude in C", "train", 2004, "2004/bach.midi", scale(60)),
    ("Frédéric Chopin", "Étude", "validation", 2006, "2006/chopin.midi", scale(62, velocity=50)),
    ("Franz Liszt", "Sonata", "test", 2018, "2018/liszt.midi", PEDALLED),
]


def make_maestro_zip(path: Path, corrupt: bool = False) -> Path:
    """The MIDI-only archive's layout: maestro-v3.0.0/<year>/<file>.midi, the CSV and JSON."""
    cols = ["canonical_composer", "canonical_title", "split", "year", "midi_filename",
            "audio_filename", "duration"]
    rows = [dict(zip(cols, [*r[:5], r[4].replace(".midi", ".wav"), 2.5], strict=True)) for r in MAESTRO_ROWS]
    text = io.StringIO()
    writer = csv.DictWriter(text, cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    table = {c: {str(i): r[c] for i, r in enumerate(rows)} for c in cols}  # pandas' orient="columns"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("maestro-v3.0.0/maestro-v3.0.0.csv", text.getvalue())
        zf.writestr("maestro-v3.0.0/maestro-v3.0.0.json", json.dumps(table))
        zf.writestr("maestro-v3.0.0/LICENSE", "CC BY-NC-SA 4.0\n")
        for row in MAESTRO_ROWS:
            zf.writestr(f"maestro-v3.0.0/{row[4]}", row[5])
        if corrupt:
            zf.writestr("maestro-v3.0.0/2018/unlisted.midi", scale(64))
    return path


def pin(monkeypatch, archive: Path, module=maestro) -> None:
    """Pin the test archive's size and sha256 in place of the real one's."""
    monkeypatch.setattr(module, "SIZE", archive.stat().st_size)
    monkeypatch.setattr(module, "SHA256", sha256_file(archive))


@pytest.fixture
def no_mirror(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("TUNELAB_DATA_MIRROR", raising=False)
    empty = tmp_path / "empty_mirror"
    empty.mkdir()
    return empty


def test_maestro_official_split_velocity_and_sustain(tiny_cfg, tmp_path, monkeypatch, no_mirror):
    archive = make_maestro_zip(tmp_path / "served.zip", corrupt=True)
    pin(monkeypatch, archive)
    monkeypatch.setattr(maestro, "URL", archive.as_uri())  # served through urllib, as the real URL
    cfg = tiny_cfg("corpus=maestro", f"corpus.mirror={no_mirror}")
    manifest = json.loads((download(cfg) / "manifest.json").read_text())
    assert manifest["source"] == archive.as_uri() and "CC BY-NC-SA 4.0" in manifest["license"]
    assert {"2004/bach.midi", "maestro-v3.0.0.csv", "maestro-v3.0.0.json"} <= manifest["sha256"].keys()

    stats = extract(cfg)
    assert stats["pieces_by_split"] == {"test": 1, "train": 1, "valid": 1}  # the CSV's, not the hash's
    assert stats["skipped"] == {"2018/unlisted.midi": "not in maestro-v3.0.0.csv"}
    scores = {s.id: s for s in load_scores(tmp_path / "data/interim/maestro/scores.jsonl.gz")}
    assert {k: s.meta["split"] for k, s in scores.items()} == {
        "2004/bach": "train", "2006/chopin": "valid", "2018/liszt": "test"}
    assert scores["2006/chopin"].meta["composer"] == "Frédéric Chopin"
    assert {n.velocity for n in scores["2006/chopin"].tracks[0].notes} == {50}
    liszt = scores["2018/liszt"]
    assert (liszt.steps_per_quarter, liszt.qpm, liszt.source) == (50, 120.0, "2018/liszt.midi")
    assert liszt.tracks[0].notes == (  # 50 steps = 0.5 s
        Note(0, 200, 60, 97),  # released at 0.5 s under the pedal: sounds until it lifts at 2 s
        Note(100, 150, 64, 31),  # released at 1.25 s, struck again at 1.5 s: ends there
        Note(150, 200, 64, 45),  # released at 1.75 s: to the pedal's lift
        Note(300, 350, 67, 70))  # after the pedal: as played


def test_maestro_without_sustain_and_from_the_json(tiny_cfg, tmp_path, monkeypatch, no_mirror):
    archive = make_maestro_zip(tmp_path / "served.zip")
    pin(monkeypatch, archive)
    monkeypatch.setattr(maestro, "URL", archive.as_uri())
    cfg = tiny_cfg("corpus=maestro", f"corpus.mirror={no_mirror}", "corpus.sustain=false")
    raw = download(cfg)
    (raw / "maestro-v3.0.0.csv").unlink()  # the JSON says the same
    extract(cfg)
    scores = {s.id: s for s in load_scores(tmp_path / "data/interim/maestro/scores.jsonl.gz")}
    assert scores["2018/liszt"].meta["split"] == "test" and scores["2004/bach"].meta["year"] == 2004
    assert [(n.start, n.end) for n in scores["2018/liszt"].tracks[0].notes] == [
        (0, 50), (100, 125), (150, 175), (300, 350)]  # the keys as played


def test_maestro_from_a_mirror(tiny_cfg, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "maestro").mkdir(parents=True)
    archive = make_maestro_zip(mirror / "maestro" / "maestro-v3.0.0-midi.zip")
    pin(monkeypatch, archive)
    monkeypatch.setattr(maestro, "URL", (tmp_path / "offline.zip").as_uri())  # never reached
    manifest = json.loads((download(tiny_cfg("corpus=maestro", f"corpus.mirror={mirror}"))
                           / "manifest.json").read_text())
    assert manifest["source"] == str(archive) and manifest["file_count"] == 6


def test_checksum_mismatch_is_one_line_naming_the_file(tiny_cfg, tmp_path, monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    (mirror / "maestro").mkdir(parents=True)
    archive = make_maestro_zip(mirror / "maestro" / "maestro-v3.0.0-midi.zip")
    monkeypatch.setattr(maestro, "SIZE", archive.stat().st_size)  # right size, real sha256
    with pytest.raises(ChecksumMismatchError) as err:
        download(tiny_cfg("corpus=maestro", f"corpus.mirror={mirror}"))
    msg = str(err.value)
    assert msg.startswith(f"{archive}: sha256 ") and maestro.SHA256 in msg and "\n" not in msg
    assert not (tmp_path / "data/raw/maestro").exists()  # nothing half-written
    monkeypatch.setattr(maestro, "SIZE", 58_416_533)  # the real size: a truncated download
    paths = [f"paths.data={tmp_path}/data", f"corpus.mirror={mirror}"]
    monkeypatch.setattr(logging.getLogger("tunelab"), "handlers", [])  # main() adds one on capsys
    assert main(["download", "corpus=maestro", *paths]) == 1
    err_line = capsys.readouterr().err.strip()
    assert err_line == (f"tunelab download: error: {archive}: {archive.stat().st_size} bytes, not the "
                        "pinned 58416533; the download or mirror copy is truncated or a different "
                        "version - re-fetch it")


@pytest.mark.parametrize("corpus", ["maestro", "lakh"])
def test_missing_corpus_names_the_url_and_the_mirror(tiny_cfg, tmp_path, monkeypatch, no_mirror, corpus):
    offline = (tmp_path / "offline.bin").as_uri()  # what an unreachable URL does, without a network
    if corpus == "maestro":
        monkeypatch.setattr(maestro, "URL", offline)
    else:
        monkeypatch.setattr(lakh.Archive, "url", property(lambda self: offline))
    with pytest.raises(DataUnavailableError) as err:
        download(tiny_cfg(f"corpus={corpus}", f"corpus.mirror={no_mirror}"))
    msg = str(err.value)
    where = "maestro/maestro-v3.0.0-midi.zip" if corpus == "maestro" else "lakh/lmd_full.tar.gz"
    assert offline in msg and f"{no_mirror}/{where} is not there" in msg and "\n" not in msg


# -- Lakh --------------------------------------------------------------------------------

MD5S = ["0a1b2c3d4e5f60718293a4b5c6d7e8f9", "1f0e0d0c0b0a09080706050403020100",
        "2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "3bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]


def make_lakh_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def pin_lakh(monkeypatch, variant: str, archive: Path) -> None:
    real = lakh.VARIANTS[variant]
    monkeypatch.setitem(lakh.VARIANTS, variant,
                        real._replace(size=archive.stat().st_size, sha256=sha256_file(archive)))


def test_lakh_full_skips_and_records_a_corrupt_file(tiny_cfg, tmp_path, monkeypatch):
    files = {f"lmd_full/{m[0]}/{m}.mid": scale(55 + 2 * i) for i, m in enumerate(MD5S[:3])}
    files[f"lmd_full/3/{MD5S[3]}.mid"] = scale(60)[:40]  # cut inside its track
    mirror = tmp_path / "mirror"
    (mirror / "lakh").mkdir(parents=True)
    pin_lakh(monkeypatch, "full", make_lakh_tar(mirror / "lakh" / "lmd_full.tar.gz", files))
    cfg = tiny_cfg("corpus=lakh", f"corpus.mirror={mirror}")
    manifest = json.loads((download(cfg) / "manifest.json").read_text())
    assert manifest["variant"] == "full" and "CC BY 4.0" in manifest["license"]
    assert sorted(manifest["sha256"]) == sorted(n.removeprefix("lmd_full/") for n in files)
    stats = extract(cfg)
    assert stats["pieces"] == 3 and stats["skipped"] == {f"3/{MD5S[3]}.mid": (
        "unreadable MIDI: EOFError: the file ends inside a track (truncated or a wrong track length)")}
    scores = load_scores(tmp_path / "data/interim/lakh_full/scores.jsonl.gz")
    assert [s.id for s in scores] == MD5S[:3]
    assert all(s.meta["split"] == split_of(s.id, 0.1, 0.1) for s in scores)  # tunelab's hash split


def test_lakh_matched_reads_a_file_matched_twice_once(tiny_cfg, tmp_path, monkeypatch, no_mirror):
    same = scale(60)
    files = {f"lmd_matched/A/A/A/TRAAAGR128F425B14B/{MD5S[0]}.mid": same,
             f"lmd_matched/Z/Y/X/TRZYXAB128F42A1234/{MD5S[0]}.mid": same,
             f"lmd_matched/B/C/D/TRBCDEF128F4212345/{MD5S[1]}.mid": scale(62)}
    archive = make_lakh_tar(tmp_path / "served.tar.gz", files)
    pin_lakh(monkeypatch, "matched", archive)
    monkeypatch.setattr(lakh.Archive, "url", property(lambda self: archive.as_uri()))
    cfg = tiny_cfg("corpus=lakh", "corpus.variant=matched", f"corpus.mirror={no_mirror}")
    assert json.loads((download(cfg) / "manifest.json").read_text())["file_count"] == 3
    stats = extract(cfg)
    assert stats["pieces"] == 2 and stats["skipped"] == {}
    scores = {s.id: s for s in load_scores(tmp_path / "data/interim/lakh_matched/scores.jsonl.gz")}
    assert scores[MD5S[0]].meta["msd_tracks"] == ["TRAAAGR128F425B14B", "TRZYXAB128F42A1234"]
    assert scores[MD5S[0]].source == f"A/A/A/TRAAAGR128F425B14B/{MD5S[0]}.mid"


def test_pinned_sources_are_the_published_ones():
    assert maestro.URL == ("https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/"
                           "maestro-v3.0.0-midi.zip")
    assert (maestro.SIZE, maestro.SHA256[:12]) == (58_416_533, "70470ee25329")
    assert lakh.VARIANTS["full"].url == "http://hog.ee.columbia.edu/craffel/lmd/lmd_full.tar.gz"
    assert lakh.VARIANTS["matched"].url == "http://hog.ee.columbia.edu/craffel/lmd/lmd_matched.tar.gz"
    assert [(a.size, a.sha256[:12]) for a in lakh.VARIANTS.values()] == [
        (1_768_163_879, "6fcfe2ac49ca"), (1_407_072_670, "621ff830aed7")]
