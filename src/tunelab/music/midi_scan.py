"""A byte-level walk of a MIDI file: what symusic does not tell about it.

symusic parses MIDI in C++ and returns notes already paired, so the fast reader in
:mod:`tunelab.music.midi_io` takes its notes from symusic. What symusic keeps to itself
and pretty_midi's reading depends on (which MIDI track a note came from, when programs
change, track names as mido decodes them, the tempo and meter events of track 0 only,
each instrument's first note-off, the order of events within one tick, the sustain pedal)
is read here, in one pass that steps over note events without building them.

The walk follows mido's reading of the bytes. Where mido would fail (pretty_midi then
raises), or where mido and symusic's parser (minimidi) read the bytes differently (events
after end_of_track, running status after a sysex, system messages, long delta times), it
raises :class:`NotReproducible` and the caller reads the file with pretty_midi instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_TICK = 10_000_000  # pretty_midi.pretty_midi.MAX_TICK: a larger tick is "likely corrupt"
MAX_MESSAGE_LENGTH = 1_000_000  # mido.midifiles.midifiles.MAX_MESSAGE_LENGTH
# mido checks a time signature's denominator 2**e with math.log(2**e, 2) == int(...), which
# float rounding fails for some e (e.g. 29): mido raises there, so the walk must too.
_BAD_DENOMINATOR_EXPONENTS = frozenset(e for e in range(256) if math.log(2**e, 2) != int(math.log(2**e, 2)))
_DATA_LEN = bytes(2 if 0x80 <= s < 0xC0 or 0xE0 <= s < 0xF0 else 1 for s in range(256))


class NotReproducible(Exception):
    """symusic's reading of this file cannot be mapped exactly onto pretty_midi's."""


@dataclass
class ChunkScan:
    """One MTrk chunk as mido reads it. A "voice" is ``channel << 7 | program``: symusic
    makes one track per voice current at a note-on, pretty_midi one instrument per voice
    current at a note-off."""

    start: int  # offset of the chunk's first event in the file
    end: int  # offset just past the chunk
    # track names, decoded as mido does (latin1): (tick, len(first_offs) then, name)
    names: list[tuple[int, int, str]] = field(default_factory=list)
    voices_on: set[int] = field(default_factory=set)  # voices current at a note-on
    notes_on: int = 0  # note-ons with velocity > 0
    # per channel, its program changes in file order: (tick, program, pitches of the
    # channel's note-offs earlier at that tick)
    program_changes: list[list[tuple[int, int, frozenset[int]]]] = field(
        default_factory=lambda: [[] for _ in range(16)])
    # the first note-off under each voice, in file order: (voice, tick, pitch)
    first_offs: list[tuple[int, int, int]] = field(default_factory=list)
    # (key, tick) -> how many note-ons of the key at that tick precede its last note-off
    # there (key = channel << 7 | pitch): the order within a tick that pretty_midi's pairing
    # depends on and symusic's notes do not show
    ons_before_off: dict[tuple[int, int], int] = field(default_factory=dict)
    # per channel, its sustain pedal (control 64) events in file order: (tick, value)
    pedals: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    eot_at: int | None = None  # offset of the end_of_track event (its delta), if any
    tick_before_eot: int = 0
    last_tick: int = 0

    @property
    def channels(self) -> list[int]:
        return sorted({v >> 7 for v in self.voices_on})


@dataclass
class FileScan:
    midi_type: int
    ticks_per_quarter: int
    chunks: list[ChunkScan]
    tempos: list[tuple[int, int]]  # (tick, µs per quarter) of track 0, in file order
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator) of track 0


def _vlq(data: bytes, pos: int) -> tuple[int, int]:
    """A variable-length quantity; symusic's parser (minimidi) reads at most 4 bytes."""
    value = 0
    for i in range(4):
        b = data[pos + i]
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos + i + 1
    raise NotReproducible("variable-length quantity longer than 4 bytes")


def _check_meta(mtype: int, payload: bytes) -> None:
    """Raise where mido's decoding of this meta event fails (pretty_midi then raises)."""
    n = len(payload)
    if (mtype == 0x00 and n == 1) or (mtype == 0x20 and n == 0) or (mtype == 0x51 and n < 3) \
            or (mtype == 0x58 and n < 4) or (mtype == 0x59 and n < 2) or (mtype == 0x54 and n < 5):
        raise NotReproducible(f"meta event 0x{mtype:02x} too short for mido")
    if mtype == 0x58 and payload[1] in _BAD_DENOMINATOR_EXPONENTS:
        raise NotReproducible("time signature denominator mido rejects")
    if mtype == 0x59:
        key = payload[0] - 256 if payload[0] > 127 else payload[0]
        if not -7 <= key <= 7 or payload[1] > 1:
            raise NotReproducible("key signature mido cannot decode")
    if mtype == 0x54 and (payload[0] >> 5 > 3 or payload[1] > 59 or payload[2] > 59 or payload[4] > 99):
        raise NotReproducible("SMPTE offset mido rejects")


def _scan_chunk(data: bytes, start: int, end: int, first: bool, tempos: list, sigs: list) -> ChunkScan:
    """Walk one chunk's events (mido's rules: running status survives meta events)."""
    chunk = ChunkScan(start, end)
    first_offs, ons_before_off = chunk.first_offs, chunk.ons_before_off
    voices_on, program_changes = chunk.voices_on, chunk.program_changes
    data_len = _DATA_LEN
    # per channel, its current voice (channel << 7 | program): pretty_midi and symusic both
    # start every track at program 0
    voice_of = [c << 7 for c in range(16)]
    last_on = [-1] * 2048  # key (channel << 7 | pitch) -> tick of its latest note-on
    ons_here = [0] * 2048  # ... and its note-ons at that tick
    off_tick = [-1] * 16  # channel -> tick of its latest note-off
    off_pitches: list[list[int]] = [[] for _ in range(16)]  # ... and its note-offs' pitches there
    voices_off: set[int] = set()
    notes_on = 0
    tick = 0
    status = 0  # running status; 0 = none yet, 0xF0 = after a sysex
    pos = start
    while pos < end:
        event_at = pos
        b = data[pos]
        if b < 0x80:  # delta times of one or two bytes inline: most events
            tick += b
            pos += 1
        elif data[pos + 1] < 0x80:
            tick += (b & 0x7F) << 7 | data[pos + 1]
            pos += 2
        else:
            delta, pos = _vlq(data, pos)
            tick += delta
        b = data[pos]
        if b >= 0x80:
            pos += 1
            if b == 0xFF:
                mtype = data[pos]
                length, pos = _vlq(data, pos + 1)
                if length > MAX_MESSAGE_LENGTH:
                    raise NotReproducible("meta event longer than mido reads")
                payload = data[pos:pos + length]
                pos += length
                if len(payload) < length:
                    raise NotReproducible("file ends inside a meta event")
                _check_meta(mtype, payload)
                if mtype == 0x2F:
                    if pos < end:
                        raise NotReproducible(
                            "events after end_of_track (symusic stops there, mido does not)")
                    chunk.eot_at = event_at
                    chunk.tick_before_eot = tick - _vlq(data, event_at)[0]
                elif mtype == 0x03:  # pretty_midi names an instrument with the latest one
                    chunk.names.append((tick, len(first_offs), payload.decode("latin1")))
                elif first and mtype == 0x51:
                    tempo = payload[0] << 16 | payload[1] << 8 | payload[2]
                    if tempo == 0:
                        raise NotReproducible("zero tempo in track 0 (pretty_midi divides by it)")
                    tempos.append((tick, tempo))
                elif first and mtype == 0x58:
                    if payload[0] == 0:
                        raise NotReproducible("time signature numerator 0 in track 0")
                    sigs.append((tick, payload[0], 2 ** payload[1]))
                continue
            if b >= 0xF0:
                if b != 0xF0:
                    raise NotReproducible(f"status 0x{b:02x} (mido and symusic read it differently)")
                length, pos = _vlq(data, pos)
                if length > MAX_MESSAGE_LENGTH:
                    raise NotReproducible("sysex longer than mido reads")
                pos += length
                status = 0xF0
                continue
            status = b
        elif status == 0 or status == 0xF0:
            raise NotReproducible("running status without a channel status before it")
        size = data_len[status]
        d1 = data[pos]
        if (d1 | data[pos + size - 1]) & 0x80:
            raise NotReproducible("data byte over 127 (mido rejects it)")
        kind = status & 0xF0
        if kind == 0x90 and data[pos + 1]:
            channel = status & 0x0F
            notes_on += 1
            voices_on.add(voice_of[channel])
            key = channel << 7 | d1
            if last_on[key] == tick:
                ons_here[key] += 1
            else:
                last_on[key] = tick
                ons_here[key] = 1
        elif kind == 0x80 or kind == 0x90:  # note_on velocity 0 is a note-off (mido, pretty_midi)
            channel = status & 0x0F
            key = channel << 7 | d1
            if last_on[key] == tick:
                ons_before_off[key, tick] = ons_here[key]
            if off_tick[channel] != tick:
                off_tick[channel] = tick
                off_pitches[channel] = [d1]
            else:
                off_pitches[channel].append(d1)
            voice = voice_of[channel]
            if voice not in voices_off:
                voices_off.add(voice)
                first_offs.append((voice, tick, d1))
        elif kind == 0xC0:
            channel = status & 0x0F
            voice_of[channel] = channel << 7 | d1
            before = frozenset(off_pitches[channel]) if off_tick[channel] == tick else frozenset()
            program_changes[channel].append((tick, d1, before))
        elif kind == 0xB0 and d1 == 64:  # the sustain pedal (tunelab.music.sustain)
            chunk.pedals.setdefault(status & 0x0F, []).append((tick, data[pos + 1]))
        pos += size
    if pos != end:
        raise NotReproducible("an event runs past the end of its chunk")
    if start == end:
        raise NotReproducible("a track with no events (pretty_midi fails on it)")
    chunk.notes_on, chunk.last_tick = notes_on, tick
    return chunk


def scan_midi(data: bytes) -> FileScan:
    """Walk the chunks mido would read; raise :class:`NotReproducible` where the fast
    reader cannot stand in for pretty_midi. The header is assumed checked (type 0/1,
    ticks per quarter, at least one track)."""
    try:
        header_len = int.from_bytes(data[4:8], "big")
        if header_len < 6:
            raise NotReproducible("short MThd chunk")
        midi_type = int.from_bytes(data[8:10], "big")
        num_tracks = int.from_bytes(data[10:12], "big")
        tpq = int.from_bytes(data[12:14], "big")
        pos = 8 + header_len
        chunks: list[ChunkScan] = []
        tempos: list[tuple[int, int]] = []
        sigs: list[tuple[int, int, int]] = []
        for i in range(num_tracks):
            if data[pos:pos + 4] != b"MTrk":
                raise NotReproducible("missing MTrk chunk")
            size = int.from_bytes(data[pos + 4:pos + 8], "big")
            if pos + 8 + size > len(data):
                raise NotReproducible("file ends inside a track")
            chunks.append(_scan_chunk(data, pos + 8, pos + 8 + size, i == 0, tempos, sigs))
            pos += 8 + size
    except IndexError as e:
        raise NotReproducible("file ends inside an event") from e
    if max(c.last_tick for c in chunks) + 1 > MAX_TICK:
        raise NotReproducible("a tick beyond pretty_midi's MAX_TICK")
    return FileScan(midi_type, tpq, chunks, tempos, sigs)
