"""The sustain pedal (MIDI control 64) applied to note lengths, as Magenta does it.

A port of note_seq ``sequences_lib.apply_sustain_control_changes`` (note-seq 0.0.5,
commit 3582550), which Magenta's performance pipelines (score2perf for Music Transformer
on MAESTRO, Performance RNN) run before the performance encoding. Times are MIDI ticks
here, not seconds: the tick -> seconds map only ever rises, so the order of events, and
hence every decision below, is the same. Per instrument:

* a control-64 value >= 64 puts the pedal down, < 64 lifts it;
* a note released while the pedal is down sounds on until the pedal is lifted;
* while the pedal is down, a new note ends every sounding note of its pitch at its onset
  (a re-struck key); a note so shortened to nothing is dropped;
* notes still held by the pedal when the piece ends end at the last event (note or
  pedal, of any instrument);
* events at one time are taken pedal-down, pedal-up, note-ons, note-offs, and in input
  order within each kind (note-seq sorts by (time, kind), stably);
* drum instruments are left alone (their pedal events still count as events).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

SUSTAIN_CONTROL = 64
SUSTAIN_ON_VALUE = 64  # values 64..127 hold the pedal down
# The order in which events at one time are processed (note-seq's constants).
_SUSTAIN_ON, _SUSTAIN_OFF, _NOTE_ON, _NOTE_OFF = range(4)

RawNote = tuple[int, int, int, int]  # start, end, pitch, velocity (ticks)


class PedalledPart(NamedTuple):
    """One instrument's notes, in the order note-seq would list them, and its pedal."""

    notes: Sequence[RawNote]
    pedal: Sequence[tuple[int, int]]  # (tick, control-64 value), in file order
    is_drum: bool = False


def apply_sustain(parts: Sequence[PedalledPart]) -> list[list[RawNote]]:
    """Each part's notes with the sustain pedal applied (see the module docstring).

    Args:
        parts: Every instrument of a piece; the end of the piece is the last event of all.

    Returns:
        The notes of each part, in input order, lengthened or shortened; notes shortened
        to nothing are left out.
    """
    times = [t for p in parts for t, _ in p.pedal]
    times += [t for p in parts if not p.is_drum for n in p.notes for t in n[:2]]
    last = max(times, default=0)
    return [list(p.notes) if p.is_drum else _sustain_part(p, last) for p in parts]


def _sustain_part(part: PedalledPart, last: int) -> list[RawNote]:
    notes = part.notes
    ends = [n[1] for n in notes]
    dropped = [False] * len(notes)
    events = sorted(
        [(t, _SUSTAIN_ON if v >= SUSTAIN_ON_VALUE else _SUSTAIN_OFF, i)
         for i, (t, v) in enumerate(part.pedal)]
        + [(n[0], _NOTE_ON, i) for i, n in enumerate(notes)]
        + [(n[1], _NOTE_OFF, i) for i, n in enumerate(notes)])
    sounding: list[int] = []  # notes sounding, by key or pedal, in onset order
    pedal_down = False
    for time, kind, i in events:
        if kind == _SUSTAIN_ON:
            pedal_down = True
        elif kind == _SUSTAIN_OFF:
            pedal_down = False
            held = []
            for j in sounding:
                if ends[j] < time:  # its key was released: it ends with the pedal
                    ends[j] = time
                else:  # its key is still down
                    held.append(j)
            sounding = held
        elif kind == _NOTE_ON:
            if pedal_down:  # a re-struck key ends the pitch's earlier notes
                for j in sounding:
                    if notes[j][2] == notes[i][2]:
                        ends[j] = time
                        dropped[j] = notes[j][0] == time
                sounding = [j for j in sounding if notes[j][2] != notes[i][2]]
            sounding.append(i)
        elif not pedal_down and i in sounding:  # a key released with the pedal up
            sounding.remove(i)
    for j in sounding:  # held by the pedal to the end of the piece
        ends[j] = last
    return [(s, ends[j], p, v) for j, (s, _, p, v) in enumerate(notes) if not dropped[j]]
