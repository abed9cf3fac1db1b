"""MIDI files to and from :class:`Score`, with pretty_midi.

Quantization follows note_seq ``quantize_note_sequence``: an onset or offset rounds to
the nearest step (ties up), and a note that would vanish keeps one step. Times are read
in ticks, so tempo changes never smear the grid.
"""

from __future__ import annotations

import math
from pathlib import Path

import mido
import pretty_midi

from tunelab.atomic import atomic_file
from tunelab.music.constants import DEFAULT_QPM, DEFAULT_STEPS_PER_QUARTER
from tunelab.music.score import Note, Score, TimeSignature, Track

MIN_QPM, MAX_QPM = 1.0, 1000.0  # outside this a tempo event is corruption, not music
MIDI_HEADER = b"MThd"


class CorruptMidiError(ValueError):
    """A file that cannot be read as music; the message says why."""


def quantize_tick(tick: float, ticks_per_quarter: int, steps_per_quarter: int) -> int:
    """Nearest step to a tick position, ties rounding up (note_seq quantize_to_step)."""
    return int(math.floor(tick * steps_per_quarter / ticks_per_quarter + 0.5))


def _check_header(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(14)
    if len(head) == 0:
        raise CorruptMidiError("empty file")
    if not head.startswith(MIDI_HEADER):
        raise CorruptMidiError("not a MIDI file (no MThd header)")
    if len(head) < 14:
        raise CorruptMidiError("truncated MIDI header")
    midi_type = int.from_bytes(head[8:10], "big")
    num_tracks = int.from_bytes(head[10:12], "big")
    division = int.from_bytes(head[12:14], "big")
    if midi_type == 2:
        raise CorruptMidiError("type-2 MIDI (independent sequences) is not supported")
    if midi_type > 2:
        raise CorruptMidiError(f"unknown MIDI file type {midi_type}")
    if num_tracks == 0:
        raise CorruptMidiError("no tracks (zero MTrk chunks)")
    if division == 0:
        raise CorruptMidiError("zero ticks per quarter note")
    if division & 0x8000:
        raise CorruptMidiError("SMPTE time division is not supported")


def read_midi(path: str | Path, steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER,
              piece_id: str | None = None) -> Score:
    """Read and quantize a MIDI file.

    Raises:
        CorruptMidiError: empty, truncated, not MIDI, type 2, zero division, an absurd
            tempo, no tracks, or no pitched notes (drums only).
    """
    path = Path(path)
    _check_header(path)
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # mido/pretty_midi raise many types for broken bytes
        # mido's EOFError carries no message: say what it means
        detail = str(e).strip() or ("the file ends inside a track (truncated or a wrong track length)"
                                    if isinstance(e, EOFError) else "no detail")
        raise CorruptMidiError(f"unreadable MIDI: {type(e).__name__}: {detail}") from e
    return score_from_pretty_midi(pm, steps_per_quarter, piece_id or path.stem, str(path))


def score_from_pretty_midi(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int, piece_id: str,
                           source: str = "") -> Score:
    """Quantize a parsed MIDI file onto the step grid."""
    _, tempi = pm.get_tempo_changes()
    for qpm in tempi:
        if not MIN_QPM <= qpm <= MAX_QPM:
            raise CorruptMidiError(f"absurd tempo {qpm:.6g} qpm")
    tpq = pm.resolution

    def step(seconds: float) -> int:
        return quantize_tick(pm.time_to_tick(seconds), tpq, steps_per_quarter)

    if not pm.instruments:
        raise CorruptMidiError("no tracks with notes")
    tracks = []
    for i, inst in enumerate(pm.instruments):
        notes = []
        for n in inst.notes:
            s = step(n.start)
            notes.append(Note(s, max(step(n.end), s + 1), int(n.pitch), int(n.velocity)))
        tracks.append(Track(inst.name or f"track{i}", tuple(notes), int(inst.program), bool(inst.is_drum)))
    if all(t.is_drum for t in tracks):
        raise CorruptMidiError("drums only: no pitched notes")
    if not any(t.notes for t in tracks):
        raise CorruptMidiError("no notes")
    sigs = []
    for ts in pm.time_signature_changes:
        sig = TimeSignature(step(ts.time), int(ts.numerator), int(ts.denominator))
        if sigs and sigs[-1].step == sig.step:
            sigs[-1] = sig  # a later event at the same step wins
        elif not sigs or (sigs[-1].numerator, sigs[-1].denominator) != (sig.numerator, sig.denominator):
            sigs.append(sig)
    if not sigs or sigs[0].step != 0:
        sigs.insert(0, TimeSignature(0))  # MIDI's implied 4/4
    return Score(
        id=piece_id,
        tracks=tuple(tracks),
        steps_per_quarter=steps_per_quarter,
        qpm=round(float(tempi[0]), 3) if len(tempi) else DEFAULT_QPM,  # MIDI stores whole µs per quarter
        time_signatures=tuple(sigs),
        source=source,
    )


def score_to_pretty_midi(score: Score, ticks_per_quarter: int = 480) -> pretty_midi.PrettyMIDI:
    """A playable MIDI: one instrument per track, at the score's (first) tempo."""
    pm = pretty_midi.PrettyMIDI(resolution=ticks_per_quarter, initial_tempo=score.qpm)
    sec = score.seconds_per_step()
    for ts in score.time_signatures:
        pm.time_signature_changes.append(
            pretty_midi.TimeSignature(ts.numerator, ts.denominator, ts.step * sec)
        )
    for t in score.tracks:
        inst = pretty_midi.Instrument(program=t.program, is_drum=t.is_drum, name=t.name)
        inst.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start * sec, n.end * sec) for n in t.notes]
        pm.instruments.append(inst)
    return pm


def write_midi(score: Score, path: str | Path) -> Path:
    """Write ``score`` as a type-1 MIDI file atomically; returns the path."""
    path = Path(path)
    with atomic_file(path, ".tmp.mid") as tmp:
        score_to_pretty_midi(score).write(str(tmp))
        mido.MidiFile(tmp)  # fail here, not in the user's player, if the bytes are bad
    return path
