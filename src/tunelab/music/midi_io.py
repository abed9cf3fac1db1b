"""MIDI files to and from :class:`Score`.

Two readers give the same Score. ``pretty_midi`` is the reference; ``symusic`` (the
default) parses in C++ and maps symusic's notes onto pretty_midi's reading of the file,
using a byte-level walk (:mod:`tunelab.music.midi_scan`) for what symusic does not expose.
Where that mapping cannot be exact (listed in :mod:`tunelab.music.midi_scan` and
:func:`_chunk_instruments`) the file is read with pretty_midi instead.

Quantization follows note_seq ``quantize_note_sequence``: an onset or offset rounds to
the nearest step (ties up), and a note that would vanish keeps one step. Times are read
in ticks, so tempo changes never smear the grid. ``sustain=True`` first lengthens the notes
by the sustain pedal, as note_seq ``apply_sustain_control_changes`` does
(:mod:`tunelab.music.sustain`); without it (the default) the pedal is ignored.
"""

from __future__ import annotations

import logging
import math
import struct
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import symusic

from tunelab.atomic import atomic_file
from tunelab.music.constants import DEFAULT_QPM, DEFAULT_STEPS_PER_QUARTER
from tunelab.music.midi_scan import ChunkScan, FileScan, NotReproducible, scan_midi
from tunelab.music.score import (
    Note,
    Score,
    TimeSignature,
    Track,
    notes_from_columns,
    sorted_track,
    valid_note_columns,
)
from tunelab.music.sustain import SUSTAIN_CONTROL, PedalledPart, apply_sustain

log = logging.getLogger(__name__)

MIN_QPM, MAX_QPM = 1.0, 1000.0  # outside this a tempo event is corruption, not music
MIDI_HEADER = b"MThd"
READERS = ("symusic", "pretty_midi")

# One instrument as pretty_midi reads it: name, notes as (start, end, pitch, velocity) in
# ticks (tuples, or the rows of an int64 array: the symusic reader's), program, is_drum.
Instrument = tuple[str, Sequence[tuple[int, int, int, int]] | np.ndarray, int, bool]


class CorruptMidiError(ValueError):
    """A file that cannot be read as music; the message says why."""


def quantize_tick(tick: float | np.ndarray, ticks_per_quarter: int,
                  steps_per_quarter: int) -> int | np.ndarray:
    """Nearest step to a tick position, ties rounding up (note_seq quantize_to_step); an
    array of ticks gives an array of steps (the same float operations, element-wise)."""
    if isinstance(tick, np.ndarray):
        return np.floor(tick * steps_per_quarter / ticks_per_quarter + 0.5).astype(np.int64)
    return int(math.floor(tick * steps_per_quarter / ticks_per_quarter + 0.5))


def _check_header(head: bytes) -> None:
    """Reject, with a reason, what neither reader should try: ``head`` is the first 14 bytes."""
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
              piece_id: str | None = None, reader: str = "symusic", sustain: bool = False) -> Score:
    """Read and quantize a MIDI file.

    Args:
        reader: ``"symusic"`` (fast; falls back to pretty_midi for the files it cannot
            read exactly as pretty_midi does) or ``"pretty_midi"`` (the reference). Both
            give the same Score and the same errors.
        sustain: Lengthen notes held by the sustain pedal (control 64) before quantizing,
            per instrument, as note_seq does (:func:`tunelab.music.sustain.apply_sustain`).

    Raises:
        CorruptMidiError: empty, truncated, not MIDI, type 2, zero division, an absurd
            tempo, no tracks, or no pitched notes (drums only).
    """
    if reader not in READERS:
        raise ValueError(f"reader={reader!r}; choose from {READERS}")
    path = Path(path)
    if reader == "symusic":
        try:
            return read_midi_symusic(path, steps_per_quarter, piece_id, sustain)
        except NotReproducible as e:
            log.debug("%s: read with pretty_midi: %s", path, e)
    else:
        with open(path, "rb") as f:
            _check_header(f.read(14))
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # mido/pretty_midi raise many types for broken bytes
        # mido's EOFError carries no message: say what it means
        detail = str(e).strip() or ("the file ends inside a track (truncated or a wrong track length)"
                                    if isinstance(e, EOFError) else "no detail")
        raise CorruptMidiError(f"unreadable MIDI: {type(e).__name__}: {detail}") from e
    return score_from_pretty_midi(pm, steps_per_quarter, piece_id or path.stem, str(path), sustain)


def _check_tempi(tempi: Sequence[float]) -> None:
    for qpm in tempi:
        if not MIN_QPM <= qpm <= MAX_QPM:
            raise CorruptMidiError(f"absurd tempo {qpm:.6g} qpm")


def _score(instruments: Sequence[Instrument], tempi: Sequence[float],
           time_signatures: Sequence[tuple[int, int, int]], ticks_per_quarter: int,
           steps_per_quarter: int, piece_id: str, source: str) -> Score:
    """The quantized Score of pretty_midi's reading of a file (both readers end here).

    Args:
        instruments: In pretty_midi's order.
        tempi: pretty_midi's ``get_tempo_changes()[1]``.
        time_signatures: (tick, numerator, denominator) of track 0, in file order.
    """
    if not instruments:
        raise CorruptMidiError("no tracks with notes")

    def step(tick):
        return quantize_tick(tick, ticks_per_quarter, steps_per_quarter)

    tracks = []
    for i, (name, ticks, program, is_drum) in enumerate(instruments):
        a = np.asarray(ticks, dtype=np.int64).reshape(-1, 4)  # start, end, pitch, velocity
        steps = step(a[:, :2])
        start = steps[:, 0]
        end = np.maximum(steps[:, 1], start + 1)  # a note that would vanish keeps one step
        pitch, velocity = a[:, 2], a[:, 3]
        if valid_note_columns(start, end, pitch, velocity):
            # in the order Track sorts them, built unchecked, and not sorted again
            order = np.lexsort((velocity, pitch, end, start))
            notes = notes_from_columns(*np.stack((start, end, pitch, velocity))[:, order].tolist())
            tracks.append(sorted_track(name or f"track{i}", notes, int(program), bool(is_drum)))
        else:  # Note raises, for the first bad note in pretty_midi's order
            notes = tuple(map(Note, start.tolist(), end.tolist(), pitch.tolist(), velocity.tolist()))
            tracks.append(Track(name or f"track{i}", notes, int(program), bool(is_drum)))
    if all(t.is_drum for t in tracks):
        raise CorruptMidiError("drums only: no pitched notes")
    if not any(t.notes for t in tracks):
        raise CorruptMidiError("no notes")
    sigs: list[TimeSignature] = []
    for tick, numerator, denominator in time_signatures:
        sig = TimeSignature(step(tick), int(numerator), int(denominator))
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


def score_from_pretty_midi(pm: pretty_midi.PrettyMIDI, steps_per_quarter: int, piece_id: str,
                           source: str = "", sustain: bool = False) -> Score:
    """Quantize a parsed MIDI file onto the step grid (``sustain``: see :func:`read_midi`)."""
    _, tempi = pm.get_tempo_changes()
    _check_tempi(tempi)
    tick = pm.time_to_tick  # inverts pretty_midi's tick -> seconds table exactly
    instruments = [
        (inst.name, [(tick(n.start), tick(n.end), n.pitch, n.velocity) for n in inst.notes],
         inst.program, inst.is_drum)
        for inst in pm.instruments
    ]
    if sustain:  # note_seq's instruments are pretty_midi's, notes and control changes alike
        pedals = [[(tick(cc.time), cc.value) for cc in inst.control_changes if cc.number == SUSTAIN_CONTROL]
                  for inst in pm.instruments]
        instruments = _sustained(instruments, pedals)
    sigs = [(tick(ts.time), ts.numerator, ts.denominator) for ts in pm.time_signature_changes]
    return _score(instruments, tempi, sigs, pm.resolution, steps_per_quarter, piece_id, source)


# -- the symusic reader ------------------------------------------------------------------

def read_midi_symusic(path: str | Path, steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER,
                      piece_id: str | None = None, sustain: bool = False) -> Score:
    """The Score :func:`read_midi` gives with ``reader="pretty_midi"``, parsed by symusic.

    Raises:
        CorruptMidiError: as :func:`read_midi`, for the reasons found before parsing
            (header) or after it (tempo, no notes, drums only).
        NotReproducible: symusic's reading cannot be mapped exactly onto pretty_midi's
            (and where pretty_midi would fail to read the file); read it with pretty_midi.
    """
    path = Path(path)
    data = path.read_bytes()
    _check_header(data[:14])
    scan = scan_midi(data)
    tpq = scan.ticks_per_quarter
    tempi = _pretty_midi_tempi(scan.tempos, tpq)
    _check_tempi(tempi)
    found = [(chunk, channel, inst) for chunk in scan.chunks
             for channel, inst in _chunk_instruments(data, scan, chunk)]
    instruments = [inst for _, _, inst in found]
    if sustain:  # the pedal works on pretty_midi's notes as (start, end, pitch, velocity) tuples
        found = [(chunk, channel, (name, list(map(tuple, notes.tolist())), program, is_drum))
                 for chunk, channel, (name, notes, program, is_drum) in found]
        instruments = _sustained([inst for _, _, inst in found], _pedals(found))
    return _score(instruments, tempi, scan.time_signatures, tpq, steps_per_quarter,
                  piece_id or path.stem, str(path))


def _sustained(instruments: Sequence[Instrument],
               pedals: Sequence[Sequence[tuple[int, int]]]) -> list[Instrument]:
    """The instruments with the sustain pedal applied (``pedals``: each one's control-64
    events as (tick, value), in file order)."""
    parts = [PedalledPart(notes, pedal, is_drum)
             for (_, notes, _, is_drum), pedal in zip(instruments, pedals, strict=True)]
    return [(name, notes, program, is_drum) for (name, _, program, is_drum), notes
            in zip(instruments, apply_sustain(parts), strict=True)]


def _pedals(found: Sequence[tuple[ChunkScan, int, Instrument]]) -> list[list[tuple[int, int]]]:
    """Each instrument's sustain pedal events, as pretty_midi files them.

    pretty_midi files a control change under the instrument of (the channel's current
    program, channel, track), and one that comes before that instrument exists under the
    first instrument the channel and track get. So when every program change of a channel
    in a track names the program of its one instrument there, all the channel's pedal
    events are that instrument's; otherwise the file is read with pretty_midi.
    """
    per_channel = Counter((id(chunk), channel) for chunk, channel, _ in found)
    out = []
    for chunk, channel, (_, notes, program, _) in found:
        pedal = chunk.pedals.get(channel, [])
        if pedal:
            if per_channel[id(chunk), channel] > 1 or any(
                    q != program for _, q, _ in chunk.program_changes[channel]):
                raise NotReproducible("a sustain pedal on a channel that changes program")
            velocity_at: dict[tuple[int, int], int] = {}
            if any(velocity_at.setdefault((s, p), v) != v for s, _, p, v in notes):
                # which of the two the pedal keeps depends on pretty_midi's note order
                raise NotReproducible("two notes of one key at one tick, of two velocities, under a pedal")
        out.append(pedal)
    return out


def _pretty_midi_tempi(tempos: Sequence[tuple[int, int]], tpq: int) -> list[float]:
    """pretty_midi's ``get_tempo_changes()[1]`` from track 0's set_tempo events, float for
    float (``_load_tempo_changes``: 120 qpm unless a tick-0 tempo replaces it, later ones
    appended unless their tick scale repeats the last)."""
    scales = [60.0 / (120.0 * tpq)]
    for tick, tempo in tempos:
        scale = 60.0 / ((6e7 / tempo) * tpq)
        if tick == 0:
            scales = [scale]
        elif scale != scales[-1]:
            scales.append(scale)
    return [60.0 / (s * tpq) for s in scales]


def _one_track_midi(scan: FileScan, body: bytes) -> bytes:
    """A file of one MTrk chunk (``body``: its events) under the scanned file's header."""
    return (b"MThd" + struct.pack(">LHHH", 6, scan.midi_type, 1, scan.ticks_per_quarter)
            + b"MTrk" + struct.pack(">L", len(body)) + body)


def _note_tracks(midi: bytes) -> list:
    """symusic's tracks that hold notes, one per (channel, program), sorted by both."""
    try:
        score = symusic.Score.from_midi(midi, ttype="tick")
    except Exception as e:  # bytes mido accepted but symusic's parser does not
        raise NotReproducible(f"symusic: {type(e).__name__}: {e}") from e
    return [t for t in score.tracks if len(t.notes)]


def _closing_note_offs(channels: Sequence[int], per_key: int) -> bytes:
    """``per_key`` note-offs for every key of ``channels``, one tick after the track's last
    event: symusic then shows the notes left open, which pretty_midi's pairing of the
    others may depend on."""
    offs = bytearray()
    for c in channels:
        for p in range(128):
            offs += bytes((0, 0x80 | c, p, 0)) * per_key
    offs[0] = 1
    return bytes(offs)


def _pretty_midi_key(notes: list[tuple[int, int, int]], ons_before_off: dict[int, int],
                     in_order: bool) -> list[tuple[int, int, int]]:
    """pretty_midi's notes of one key (channel and pitch) from symusic's, both as
    (start, end, velocity) ticks.

    symusic closes the oldest open note of the key at each note-off; pretty_midi
    (``_load_instruments``) closes every open note not started at the note-off's tick, keeps
    those started there if it closed another, and else drops them. So symusic's notes give
    pretty_midi's note-ons and the ticks of the note-offs that close something (a note-off
    with nothing open in symusic has nothing open in pretty_midi either); the scan gives the
    order within a tick (``ons_before_off``: tick -> note-ons there before the last note-off
    there). ``in_order``: notes starting at one tick are in file order (one symusic track).
    """
    ends_at = Counter(end for _, end, _ in notes)
    starts_at: dict[int, list[tuple[int, int, int]]] = {}
    for n in notes:
        starts_at.setdefault(n[0], []).append(n)
    zero_at = {start for start, end, _ in notes if end == start}  # symusic's zero-length notes
    out: list[tuple[int, int, int]] = []
    sounding: list[tuple[int, int]] = []  # pretty_midi's open notes: (start, velocity)
    for tick in sorted(ends_at.keys() | starts_at.keys()):
        started = starts_at.get(tick)
        ends = ends_at.get(tick)
        if ends:
            # the first note-off closes the notes from earlier ticks; a note started at this
            # tick survives if no note-off follows it here, or if the only one closed others
            survive_all = ends == 1 and bool(sounding)
            for s, v in sounding:
                out.append((s, tick, v))
            sounding = []
            if started:
                dropped = 0 if survive_all else ons_before_off.get(tick, 0)
                if tick in zero_at and any(e == tick for _, e, _ in started[dropped:]):
                    raise NotReproducible("symusic's pairing disagrees with the scan's order")  # not expected
                if not in_order and 0 < dropped < len(started) and len({v for _, _, v in started}) > 1:
                    raise NotReproducible(
                        "notes of one key at one tick under two programs, in an unknown order")
                if dropped:
                    started = started[dropped:]
        if started:
            for s, _, v in started:
                sounding.append((s, v))
    return out  # notes still open at the end: pretty_midi drops them


def _pretty_midi_notes(start: np.ndarray, end: np.ndarray, pitch: np.ndarray, velocity: np.ndarray,
                       ons_before_off: dict[int, dict[int, int]], in_order: bool) -> tuple[np.ndarray, ...]:
    """pretty_midi's notes of one channel from symusic's (arrays in note-on order).

    Where no two notes of a key sound at once the pairings agree and pretty_midi only drops
    the notes ended at their start tick; other keys go through :func:`_pretty_midi_key`.
    """
    order = np.argsort(pitch, kind="stable")
    s, e, p = start[order], end[order], pitch[order]
    clash = (p[1:] == p[:-1]) & ((e[:-1] > s[1:]) | ((s[:-1] == e[:-1]) & (e[:-1] == s[1:])))
    keep = end > start
    if not clash.any():
        if keep.all():
            return start, end, pitch, velocity
        return start[keep], end[keep], pitch[keep], velocity[keep]
    keys = sorted(set(p[1:][clash].tolist()))  # the keys to pair note by note
    at_key = [pitch == key for key in keys]
    for at in at_key:
        keep &= ~at
    paired: list[tuple[int, int, int, int]] = []  # after the kept notes, key by key
    for key, at in zip(keys, at_key, strict=True):
        paired += [(s_, e_, key, v_) for s_, e_, v_ in _pretty_midi_key(
            list(zip(start[at].tolist(), end[at].tolist(), velocity[at].tolist(), strict=True)),
            ons_before_off.get(key, {}), in_order)]
    rows = np.asarray(paired, dtype=np.int64).reshape(-1, 4)
    return tuple(np.concatenate([col[keep], rows[:, k]])
                 for k, col in enumerate((start, end, pitch, velocity)))


def _programs_at_offs(end: np.ndarray, pitch: np.ndarray,
                      changes: Sequence[tuple[int, int, frozenset[int]]]) -> np.ndarray:
    """The channel's program at each note's closing note-off (pretty_midi files the note
    under it): the first note-off of the key at the end tick, placed among that tick's
    program changes by the pitches each change saw released before it."""
    if not changes:
        return np.zeros_like(end)
    if changes[-1][0] < end.min(initial=changes[-1][0] + 1):
        return np.full_like(end, changes[-1][1])  # every note ends after every change
    ticks = np.asarray([t for t, _, _ in changes])
    programs = np.asarray([0, *(q for _, q, _ in changes)])
    program = programs[np.searchsorted(ticks, end, side="left")]  # changes before the end tick
    for i in np.flatnonzero(np.isin(end, ticks)).tolist():
        t, p = int(end[i]), int(pitch[i])
        for tick, q, released in changes:
            if tick == t and p not in released:
                program[i] = q  # this change came before the key's note-off
    return program


def _name_at(names: Sequence[tuple[int, int, str]], created: int, order: int | None) -> str:
    """The track name pretty_midi gives an instrument: the latest before the note-off that
    creates it (at tick ``created``; ``order``: its index among the scan's first note-offs,
    when it is one of them)."""
    name = ""
    for tick, offs_before, text in names:
        if order is not None:
            if offs_before > order:
                break
        elif tick > created:
            break
        elif tick == created:
            raise NotReproducible("a track name at the tick of a note-off, in an order the scan cannot tell")
        name = text
    return name


def _chunk_instruments(data: bytes, scan: FileScan, chunk: ChunkScan) -> list[tuple[int, Instrument]]:
    """pretty_midi's instruments of one MIDI track, from symusic's notes, each with its
    channel.

    symusic makes a track per (channel, program) current at a note-on; pretty_midi makes
    an instrument per (program at the note-off, channel), created (and so ordered) at the
    first note-off that closes one of its notes. Both pair notes per (channel, pitch).
    """
    voices = sorted(chunk.voices_on)
    if not voices:
        return []
    tracks = _note_tracks(_one_track_midi(scan, data[chunk.start:chunk.end]))
    opened_past_end = None
    left_open = chunk.notes_on - sum(len(t.notes) for t in tracks)
    if left_open:
        # symusic drops notes never closed, as pretty_midi does, but they can change
        # pretty_midi's pairing of the others: close them after the end to see them
        at = chunk.eot_at if chunk.eot_at is not None else chunk.end
        before = chunk.tick_before_eot if chunk.eot_at is not None else chunk.last_tick
        offs = _closing_note_offs(chunk.channels, min(left_open, 8))
        tracks = _note_tracks(_one_track_midi(scan, data[chunk.start:at] + offs + data[at:chunk.end]))
        opened_past_end = before + 1
        if sum(len(t.notes) for t in tracks) != chunk.notes_on:
            raise NotReproducible("more than 8 notes of one key left open")
    if [(t.program, t.is_drum) for t in tracks] != [(v & 0x7F, v >> 7 == 9) for v in voices]:
        raise NotReproducible("symusic's tracks do not match the track's channels and programs")
    by_channel: dict[int, list[dict]] = {}
    for voice, track in zip(voices, tracks, strict=True):
        by_channel.setdefault(voice >> 7, []).append(track.notes.numpy())
    ons_before_off: dict[int, dict[int, dict[int, int]]] = {}  # channel -> pitch -> tick -> count
    for (key, tick), count in chunk.ons_before_off.items():
        ons_before_off.setdefault(key >> 7, {}).setdefault(key & 0x7F, {})[tick] = count
    first_off = {voice: (i, tick, pitch) for i, (voice, tick, pitch) in enumerate(chunk.first_offs)}
    found = []
    for c, parts in by_channel.items():
        start, duration, pitch, velocity = (
            (np.concatenate([a[k] for a in parts]) if len(parts) > 1 else parts[0][k]).astype(np.int64)
            for k in ("time", "duration", "pitch", "velocity"))
        if len(parts) > 1:  # back into note-on order, but for ties at one tick
            order = np.argsort(start, kind="stable")
            start, duration, pitch, velocity = start[order], duration[order], pitch[order], velocity[order]
        start, end, pitch, velocity = _pretty_midi_notes(start, start + duration, pitch, velocity,
                                                         ons_before_off.get(c, {}), len(parts) == 1)
        if opened_past_end is not None:
            closed = end != opened_past_end  # pretty_midi drops notes never closed
            start, end, pitch, velocity = start[closed], end[closed], pitch[closed], velocity[closed]
        program = _programs_at_offs(end, pitch, chunk.program_changes[c])
        programs = sorted(set(program.tolist())) if len(program) and program.min() != program.max() \
            else program[:1].tolist()  # np.unique's, faster for one program
        for q in programs:
            if len(programs) > 1:
                mine = program == q
                s, e, p, v = start[mine], end[mine], pitch[mine], velocity[mine]
            else:
                s, e, p, v = start, end, pitch, velocity
            # the note-off that creates the instrument closes its earliest-ending notes; the
            # scan's first note-off under the voice is it if it ends one of them
            created = int(e.min())
            order, tick, off_pitch = first_off.get(c << 7 | q, (None, -1, -1))
            if tick != created or not np.any((p == off_pitch) & (e == tick)):
                order = None
            notes = np.stack([s, e, p, v], axis=1)  # rows (start, end, pitch, velocity), int64
            found.append((created, order, (c, (_name_at(chunk.names, created, order), notes, q, c == 9))))
    tied = [f for f in found if sum(g[0] == f[0] for g in found) > 1]
    if any(order is None for _, order, _ in tied):
        raise NotReproducible("instruments created at one tick in an order the scan cannot tell")
    return [inst for _, _, inst in sorted(found, key=lambda f: (f[0], f[1] or 0))]


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
