"""MIDI to audio with the fluidsynth command-line synthesizer, for listening (the report)
and for audio models later.

fluidsynth renders 32-bit float stereo; we downmix to mono, cut at ``max_seconds``,
trim the silence fluidsynth leaves after the last release, peak-normalise to -1 dBFS
(so samples of different models play at comparable loudness) and write 16-bit PCM WAV.
The fast renderer runs in sample time on one thread, so the same MIDI, soundfont,
rate and fluidsynth build give byte-identical WAV files (tests/music/test_audio.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import mido
import numpy as np

from tunelab.atomic import atomic_file
from tunelab.music.midi_io import MIDI_HEADER, CorruptMidiError

INSTALL_HINT = ("install it: `sudo apt-get install fluidsynth` (Debian/Ubuntu) "
                "or `brew install fluid-synth` (macOS)")
GAIN = 1.0  # fluidsynth master gain; float output cannot clip, the peak is normalised after
PEAK = 10 ** (-1 / 20)  # -1 dBFS: headroom for lossy re-encoders and inter-sample peaks
SILENCE_DB = -60.0  # below the peak by this much counts as silence when trimming the tail
SILENT_PEAK = 1e-5  # fluidsynth's output without notes (~1e-8 of noise): left silent, not normalised
TAIL_PAD_S = 0.05  # kept after the last audible sample
FADE_S = 0.02  # fade-out at the end, so a cut at max_seconds does not click


class AudioRenderError(RuntimeError):
    """fluidsynth is missing or failed; the message is one line."""


class FluidsynthNotFoundError(AudioRenderError):
    """The fluidsynth executable is not on PATH."""


def default_soundfont() -> Path:
    """The General MIDI soundfont that ships inside the pretty_midi package (TimGM6mb)."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def fluidsynth_executable() -> str:
    """Path of the fluidsynth CLI; raises :class:`FluidsynthNotFoundError` with the install hint."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise FluidsynthNotFoundError(f"fluidsynth is not installed (not on PATH); {INSTALL_HINT}")
    return exe


def _check_midi(midi: Path) -> None:
    """Parse the file before fluidsynth sees it: fluidsynth exits 0 on a truncated file
    and renders half a second of silence instead of failing."""
    if not midi.is_file():
        raise CorruptMidiError(f"{midi}: no such file")
    with open(midi, "rb") as f:
        head = f.read(4)
    if head != MIDI_HEADER:
        raise CorruptMidiError(f"{midi}: not a MIDI file (no MThd header)")
    try:
        mido.MidiFile(midi)
    except Exception as e:  # mido raises EOFError, OSError, ValueError, KeyError... on broken bytes
        reason = str(e) or ("unexpected end of file" if isinstance(e, EOFError) else "no detail")
        raise CorruptMidiError(f"{midi}: unreadable MIDI: {type(e).__name__}: {reason}") from e


def _fluidsynth(midi: Path, raw: Path, sample_rate: int, soundfont: Path) -> None:
    cmd = [
        fluidsynth_executable(), "-n", "-i", "-q",
        "-f", os.devnull,  # no ~/.fluidsynth or system config: the same settings everywhere
        "-o", "synth.cpu-cores=1",  # one thread: deterministic mixing order
        "-R", "1", "-C", "1",  # the GM default reverb and chorus: deterministic, and kinder to the ear
        "-g", str(GAIN), "-r", str(sample_rate),
        "-T", "raw", "-O", "float", "-E", "little",  # floats: we downmix and quantize ourselves
        "-F", str(raw), str(soundfont.resolve()), str(midi.resolve()),  # absolute: no '-x' names
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    err_lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    # fluidsynth exits 0 on many failures (bad soundfont, unwritable output): read stderr too
    failed = proc.returncode != 0 or any(
        "error" in ln.lower() and not ln.startswith("fluidsynth: warning") for ln in err_lines)
    if failed or not raw.is_file() or raw.stat().st_size == 0:
        last = err_lines[-1] if err_lines else f"exit status {proc.returncode}, no audio written"
        raise AudioRenderError(f"fluidsynth failed on {midi}: {last}")


def _finish(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Trim the trailing silence, fade out the last few ms and normalise the peak."""
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak < SILENT_PEAK:  # no notes: normalising would blow the synth's noise floor up to -1 dBFS
        return np.zeros_like(mono)
    if peak > 0:
        loud = np.flatnonzero(np.abs(mono) > peak * 10 ** (SILENCE_DB / 20))
        end = min(mono.size, int(loud[-1]) + 1 + int(TAIL_PAD_S * sample_rate))
        mono = mono[:end] * (PEAK / peak)
    fade = min(mono.size, int(FADE_S * sample_rate))
    if fade:
        mono[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return mono


def render_wav(midi: Path, out: Path, sample_rate: int = 22050, max_seconds: float | None = None,
               soundfont: Path | None = None) -> Path:
    """Render ``midi`` to a mono 16-bit PCM WAV at ``out``, written whole or not at all.

    Raises:
        FluidsynthNotFoundError: fluidsynth is not installed (the message says how to).
        CorruptMidiError: ``midi`` is missing or not readable as MIDI (the message names it).
        AudioRenderError: fluidsynth failed (the message ends with its last stderr line)
            or the soundfont is missing.
    """
    midi, out = Path(midi), Path(out)
    soundfont = Path(soundfont) if soundfont is not None else default_soundfont()
    if sample_rate <= 0:
        raise ValueError(f"sample_rate={sample_rate}: must be a positive integer")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds={max_seconds}: must be > 0 or None")
    fluidsynth_executable()  # the missing-tool message first: it is the fix for every file
    if not soundfont.is_file():
        raise AudioRenderError(f"soundfont not found: {soundfont}")
    _check_midi(midi)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tunelab-render-") as tmp:
        raw = Path(tmp) / "render.f32"
        _fluidsynth(midi, raw, sample_rate, soundfont)
        # read only what we keep: a long MIDI never has to fit in memory whole
        count = -1 if max_seconds is None else 2 * int(round(max_seconds * sample_rate))
        stereo = np.fromfile(raw, dtype="<f4", count=count)
    stereo = stereo[: stereo.size - stereo.size % 2].reshape(-1, 2)
    mono = _finish(stereo.mean(axis=1, dtype=np.float32), sample_rate)
    pcm = np.round(np.clip(mono, -1.0, 1.0) * 32767.0).astype("<i2")  # round, no dither: deterministic
    with atomic_file(out, ".wav.tmp") as tmp_out, wave.open(str(tmp_out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return out


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A PCM WAV file as float32 mono samples in [-1, 1] (channels averaged) and its rate."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        data = w.readframes(w.getnframes())
    if width == 1:  # 8-bit WAV is unsigned
        x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v & 0x800000, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = (np.frombuffer(data, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    else:
        raise ValueError(f"{path}: unsupported sample width {width} bytes")
    return x.reshape(-1, channels).mean(axis=1, dtype=np.float32), rate
