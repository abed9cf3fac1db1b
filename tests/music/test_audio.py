"""render_wav: format, length, loudness where the notes are, pitch, determinism, errors."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from conftest import score_of
from tunelab.music.audio import AudioRenderError, FluidsynthNotFoundError, read_wav, render_wav
from tunelab.music.midi_io import CorruptMidiError, write_midi

RATE = 16000  # not the 22050 default: the requested rate must be the one written


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _window(x: np.ndarray, rate: int, t0: float, t1: float) -> np.ndarray:
    return x[int(t0 * rate):int(t1 * rate)]


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spectrum)])


@pytest.fixture
def two_notes(tmp_path):
    """A4 (440 Hz) for 2 s, 4 s rest, E5 (659.3 Hz) for 2 s: 8 s at 120 qpm, 16th steps."""
    return write_midi(score_of([(69, 0, 16), (76, 48, 64)]), tmp_path / "two_notes.mid")


@pytest.fixture
def continuous(tmp_path):
    """Quarter notes without a gap for 8 s: any cut lands in sound, never in a trimmed tail."""
    return write_midi(score_of([(60 + (k % 5), 4 * k, 4 * k + 4) for k in range(16)]), tmp_path / "run.mid")


def test_render_is_mono_16bit_at_rate_with_sound_where_the_notes_are(fluidsynth, two_notes, tmp_path):
    out = render_wav(two_notes, tmp_path / "out" / "two_notes.wav", sample_rate=RATE)
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getcomptype()) == (1, 2, RATE, "NONE")
    x, rate = read_wav(out)
    assert rate == RATE and x.dtype == np.float32
    seconds = x.size / rate
    assert 8.0 <= seconds <= 9.5, seconds  # the music's 8 s plus the piano's release, trailing silence cut
    assert 0.8 < np.max(np.abs(x)) <= 1.0  # normalised to -1 dBFS
    assert _rms(x) > 0.01
    first, rest = _window(x, rate, 0.05, 1.9), _window(x, rate, 3.5, 5.9)
    second = _window(x, rate, 6.05, 7.9)
    assert _rms(first) > 100 * _rms(rest) and _rms(second) > 100 * _rms(rest)  # >40 dB: silence between
    # TimGM6mb's piano: the fundamental is the spectrum's peak (measured: 439.4 Hz and 659.9 Hz)
    assert _peak_hz(_window(x, rate, 0.05, 1.5), rate) == pytest.approx(440.0, rel=0.02)
    assert _peak_hz(_window(x, rate, 6.05, 7.5), rate) == pytest.approx(659.26, rel=0.02)


def test_render_is_cut_at_max_seconds_and_deterministic(fluidsynth, continuous, tmp_path):
    a = render_wav(continuous, tmp_path / "a.wav", sample_rate=RATE, max_seconds=3.0)
    b = render_wav(continuous, tmp_path / "b.wav", sample_rate=RATE, max_seconds=3.0)
    x, rate = read_wav(a)
    assert x.size == 3 * RATE  # cut exactly, the cut lands in sound so nothing is trimmed
    assert np.abs(x[-5:]).max() < 1e-3  # faded out: no click at the cut
    assert a.read_bytes() == b.read_bytes()  # fluidsynth's fast render runs in sample time
    full, _ = read_wav(render_wav(continuous, tmp_path / "full.wav", sample_rate=RATE))
    assert 8.0 <= full.size / RATE <= 9.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav", "full.wav", "run.mid"]  # no temps


TRUNCATED = b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk"  # a valid header, then nothing


@pytest.mark.parametrize("content", [b"", b"not a midi file", TRUNCATED])
def test_corrupt_midi_names_the_file_and_writes_nothing(fluidsynth, tmp_path, content):
    bad = tmp_path / "broken_tune.mid"
    bad.write_bytes(content)
    out = tmp_path / "out" / "broken_tune.wav"
    with pytest.raises(CorruptMidiError, match="broken_tune.mid"):
        render_wav(bad, out)
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_fluidsynth_failure_gives_its_last_stderr_line(fluidsynth, two_notes, tmp_path):
    fake_sf2 = tmp_path / "fake.sf2"
    fake_sf2.write_bytes(b"RIFX not a soundfont")
    out = tmp_path / "x.wav"
    with pytest.raises(AudioRenderError, match=r"fluidsynth failed on .*two_notes\.mid: .*SoundFont") as e:
        render_wav(two_notes, out, soundfont=fake_sf2)
    assert "\n" not in str(e.value)
    assert not out.exists()


def test_missing_fluidsynth_says_how_to_install(two_notes, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    out = tmp_path / "x.wav"
    with pytest.raises(FluidsynthNotFoundError) as e:
        render_wav(two_notes, out)
    assert "apt-get install fluidsynth" in str(e.value) and "brew install fluid-synth" in str(e.value)
    assert not out.exists()


def test_read_wav_downmixes_and_scales(tmp_path):
    path = tmp_path / "stereo.wav"
    frames = np.array([[32767, -32768], [16384, 16384], [0, -16384]], dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames.tobytes())
    x, rate = read_wav(path)
    assert rate == 8000 and x.dtype == np.float32
    np.testing.assert_allclose(x, [(32767 - 32768) / 65536, 0.5, -0.25], atol=1e-6)


def test_a_stretch_without_notes_renders_as_silence_not_amplified_noise(fluidsynth, tmp_path):
    # the only note starts at 4 s; cut at 1 s nothing sounds, and fluidsynth's ~1e-8 noise
    # floor must not be normalised up to full scale
    midi = write_midi(score_of([(69, 32, 40)]), tmp_path / "late.mid")
    audio, _ = read_wav(render_wav(midi, tmp_path / "late.wav", 22050, max_seconds=1.0))
    assert np.max(np.abs(audio)) == 0
