"""Deterministic figures: matplotlib without a display, files written whole (through a
temporary name) and byte-stable (no timestamps, fixed SVG ids), so DVC sees a change
only when the picture changes."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tunelab.atomic import atomic_file  # noqa: E402
from tunelab.music.score import Score  # noqa: E402

plt.rcParams["svg.hashsalt"] = "tunelab"  # SVG element ids from a fixed salt, not random
_NO_TIMESTAMP = {".png": {"Software": None}, ".svg": {"Date": None}, ".pdf": {"CreationDate": None}}


def save_figure(fig: plt.Figure, path: Path, formats: tuple[str, ...] = (".png",)) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix in ``formats`` and close it."""
    written = []
    for suffix in formats:
        out = Path(path).with_suffix(suffix)
        with atomic_file(out, ".tmp" + suffix) as tmp:
            fig.savefig(tmp, metadata=_NO_TIMESTAMP[suffix])
        written.append(out)
    plt.close(fig)
    return written


def draw_piano_roll(ax: plt.Axes, score: Score, segment_steps: int | None = None, title: str = "") -> None:
    """A piano roll of ``score`` on ``ax``: one colour per part, a dashed line every
    ``segment_steps`` (bars, or an interpolation's windows)."""
    total = max(score.total_steps, segment_steps or 1, 1)
    for k, track in enumerate(score.tracks):
        for n in track.notes:
            ax.broken_barh([(n.start, n.end - n.start)], (n.pitch - 0.4, 0.8), color=f"C{k % 10}",
                           label=track.name if n is track.notes[0] else None)
    if segment_steps:
        for x in range(segment_steps, total, segment_steps):
            ax.axvline(x, color="0.6", lw=0.8, ls="--")
    ax.set(xlabel="16th-note step", ylabel="MIDI pitch", title=title, xlim=(0, total))
    if len(score.tracks) > 1:
        ax.legend(loc="upper right", fontsize=8)


def write_piano_roll(score: Score, path: Path, segment_steps: int | None, title: str,
                     formats: tuple[str, ...] = (".png",)) -> Path:
    """A piano-roll picture of ``score``; returns the first file written."""
    fig, ax = plt.subplots(figsize=(min(4 + max(score.total_steps, 1) / 32, 24), 4), dpi=100)
    draw_piano_roll(ax, score, segment_steps, title)
    fig.tight_layout()
    return save_figure(fig, path, formats)[0]


def write_spectrogram(wav: Path, path: Path, title: str, max_hz: float = 5000.0) -> Path:
    """A log-power spectrogram picture of a WAV file (generated audio has no piano roll)."""
    import soundfile as sf

    audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    fig, ax = plt.subplots(figsize=(min(4 + len(audio) / rate, 24), 4), dpi=100)
    ax.specgram(audio.mean(1) + 1e-9, NFFT=1024, Fs=rate, noverlap=768, cmap="magma")
    ax.set(xlabel="seconds", ylabel="Hz", title=title, ylim=(0, min(max_hz, rate / 2)))
    fig.tight_layout()
    return save_figure(fig, path, (Path(path).suffix or ".png",))[0]


class Skip(Exception):
    """A figure whose inputs are missing; the message says which."""


def read_table(reports: Path, name: str) -> list[dict]:
    """reports/tables/{name}.json (the tables stage), or Skip."""
    path = Path(reports) / "tables" / f"{name}.json"
    if not path.is_file():
        raise Skip(f"{path} is missing: run `tunelab tables`")
    return json.loads(path.read_text())
