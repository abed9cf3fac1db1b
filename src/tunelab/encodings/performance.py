"""Performance RNN events (``performance_with_dynamics``): 388 tokens at 10 ms resolution.

Token order is note-seq's ``PerformanceOneHotEncoding(num_velocity_bins=32)``:
``NOTE_ON`` 0..127 -> ids 0..127, ``NOTE_OFF`` 0..127 -> 128..255, ``TIME_SHIFT`` 1..100
(x 10 ms) -> 256..355, ``VELOCITY`` bins 1..32 -> 356..387.

Encoding (note-seq ``Performance(quantize_note_sequence_absolute(seq, 100))``):

* all tracks are merged; a note's seconds are ``step * score.seconds_per_step()``, quantized
  to 10 ms ticks as ``int(seconds * 100 + 0.5)``; a note that collapses to zero ticks is
  lengthened to one tick; notes of velocity 0 (MIDI's note-off idiom) are dropped;
* notes are ordered by their unquantized (start, pitch) -- exact ties by (end, velocity) --
  and their on/off events sorted by (tick, note order, on before off of the same note), time
  advancing from tick 0 in shifts of at most 100 ticks (so a 2.5 s gap is 100 + 100 + 50);
* a VELOCITY event precedes a NOTE_ON whenever its bin differs from the current one
  (``bin = (v - 1) // 4 + 1``; bins decode to ``1 + 4 * (bin - 1)``).

Decoding (note-seq ``Performance.to_sequence``) returns one track on a grid of
``steps_per_quarter=50`` at ``qpm=120``, so one step is exactly one 10 ms tick and step
times are integers. A NOTE_OFF ends the *earliest started* sounding note of its pitch
(FIFO), notes still sounding at the end end there, zero-length notes are dropped.

Round trip: ``decode(encode(s), score_id=s.id) == to_performance_grid(s)``. The canonical
form is ``s`` merged, quantized and velocity-binned as above, with one extra rule for
same-pitch overlaps (unisons between Bach voices): FIFO pairing cannot tell which of two
overlapping same-pitch notes a NOTE_OFF belongs to, so a note nested inside another of the
same pitch (A = [0, 30), B = [10, 20)) comes back as [0, 20) + [10, 30). The canonical
form applies that pairing up front: per pitch, the k-th onset (in event order) takes the
k-th earliest end. :func:`count_fifo_repairs` counts the notes this changes.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from itertools import chain
from operator import attrgetter
from typing import NamedTuple

import numpy as np

from tunelab.encodings.vocab import Vocab
from tunelab.music.score import Note, Score, Track

STEPS_PER_SECOND = 100  # 10 ms ticks (note-seq DEFAULT_STEPS_PER_SECOND)
MAX_SHIFT_STEPS = 100  # longest single TIME_SHIFT: 1 s
NUM_VELOCITY_BINS = 32
NUM_PITCHES = 128
# Decoded scores: 50 steps per quarter at 120 qpm make one step exactly 10 ms.
GRID_STEPS_PER_QUARTER = 50
GRID_QPM = 120.0
TRACK_NAME = "performance"

NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY = "NOTE_ON", "NOTE_OFF", "TIME_SHIFT", "VELOCITY"
# (type, first value, last value) in token order, as PerformanceOneHotEncoding's event ranges.
EVENT_RANGES = (
    (NOTE_ON, 0, NUM_PITCHES - 1),
    (NOTE_OFF, 0, NUM_PITCHES - 1),
    (TIME_SHIFT, 1, MAX_SHIFT_STEPS),
    (VELOCITY, 1, NUM_VELOCITY_BINS),
)
_OFFSETS = {}
_acc = 0
for _type, _lo, _hi in EVENT_RANGES:
    _OFFSETS[_type] = _acc
    _acc += _hi - _lo + 1
NUM_CLASSES = _acc  # 388


class PerformanceEvent(NamedTuple):
    """One performance event: ``type`` is NOTE_ON, NOTE_OFF, TIME_SHIFT or VELOCITY."""

    type: str
    value: int


def _bin_size(num_bins: int = NUM_VELOCITY_BINS) -> int:
    return -(-127 // num_bins)  # ceil(127 / bins): 4 for 32 bins


def velocity_to_bin(velocity: int, num_bins: int = NUM_VELOCITY_BINS) -> int:
    """note-seq ``velocity_to_bin``: MIDI velocity 1..127 -> bin 1..num_bins."""
    return (velocity - 1) // _bin_size(num_bins) + 1


def bin_to_velocity(velocity_bin: int, num_bins: int = NUM_VELOCITY_BINS) -> int:
    """note-seq ``velocity_bin_to_velocity``: the lowest velocity of the bin."""
    return 1 + (velocity_bin - 1) * _bin_size(num_bins)


def seconds_to_tick(seconds: float) -> int:
    """note-seq ``quantize_to_step`` at 100 steps/s with cutoff 0.5 (halves round up)."""
    return int(seconds * STEPS_PER_SECOND + 0.5)


def _quantized_notes(score: Score) -> list[Note]:
    """Notes of all tracks on the 10 ms grid with binned velocities, in event order."""
    sps = score.seconds_per_step()
    keyed = []
    for track in score.tracks:
        for n in track.notes:
            if n.velocity == 0:
                continue  # a silent note; MIDI reads velocity 0 as a note-off
            start = seconds_to_tick(n.start * sps)
            end = max(seconds_to_tick(n.end * sps), start + 1)  # note-seq keeps it 1 tick
            vel = bin_to_velocity(velocity_to_bin(n.velocity))
            # note-seq orders by unquantized (start_time, pitch), stably; the score's steps
            # give the same order, and (end, velocity) fix the order of exact ties.
            keyed.append(((n.start, n.pitch, n.end, n.velocity), Note(start, end, n.pitch, vel)))
    keyed.sort(key=lambda kn: kn[0])
    return [note for _, note in keyed]


def score_to_events(score: Score) -> list[PerformanceEvent]:
    """Performance events of all tracks of ``score`` (see the module docstring).

    Args:
        score: Any score; its tempo gives the seconds of each step.

    Returns:
        Events in time order, starting at time 0.
    """
    notes = _quantized_notes(score)
    # (tick, note index, is_off): note-seq's sort; offs of earlier notes precede later onsets.
    marks = sorted(
        [(n.start, i, False) for i, n in enumerate(notes)]
        + [(n.end, i, True) for i, n in enumerate(notes)]
    )
    events: list[PerformanceEvent] = []
    now, current_bin = 0, 0
    for tick, i, is_off in marks:
        while tick - now > 0:
            shift = min(tick - now, MAX_SHIFT_STEPS)
            events.append(PerformanceEvent(TIME_SHIFT, shift))
            now += shift
        note = notes[i]
        if not is_off:
            vbin = velocity_to_bin(note.velocity)
            if vbin != current_bin:
                current_bin = vbin
                events.append(PerformanceEvent(VELOCITY, vbin))
        events.append(PerformanceEvent(NOTE_OFF if is_off else NOTE_ON, note.pitch))
    return events


_SHIFT_LABEL = _OFFSETS[TIME_SHIFT] - 1  # + shift (1..100)
_NOTE_COLUMNS = tuple(attrgetter(name) for name in ("start", "end", "pitch", "velocity"))
_VELOCITY_LABEL = _OFFSETS[VELOCITY] - 1  # + bin (1..32)


def score_to_labels(score: Score) -> np.ndarray:
    """``events_to_labels(score_to_events(score))``, token for token, with array operations.

    The same float operations as :func:`_quantized_notes` (element-wise), the same orders
    (notes by (start, pitch, end, velocity) in steps; marks by (tick, note, off)), and the
    events each mark adds: shifts of 100 then the rest, a VELOCITY event before a NOTE_ON
    whose bin differs from the last NOTE_ON's, then the NOTE_ON or NOTE_OFF.
    """
    count = sum(len(t.notes) for t in score.tracks)
    start, end, pitch, velocity = (
        np.fromiter(map(get, chain.from_iterable(t.notes for t in score.tracks)), np.int64, count)
        for get in _NOTE_COLUMNS)
    if not velocity.all():  # velocity 0: not a note
        sounding = velocity != 0
        start, end, pitch, velocity = start[sounding], end[sounding], pitch[sounding], velocity[sounding]
    n = len(start)
    if not n:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((velocity, end, pitch, start))  # stable, as list.sort with the same key
    sps = score.seconds_per_step()
    on = ((start[order] * sps) * STEPS_PER_SECOND + 0.5).astype(np.int64)
    off = np.maximum(((end[order] * sps) * STEPS_PER_SECOND + 0.5).astype(np.int64), on + 1)
    pitch = pitch[order]
    vbin = (velocity[order] - 1) // _bin_size() + 1  # bin of the binned velocity: the same bin
    # marks interleaved (on 0, off 0, on 1, ...): index 2 * note + is_off, so a stable sort by
    # tick orders them by (tick, note, is_off)
    ticks = np.stack([on, off], axis=1).ravel()
    marks = np.argsort(ticks, kind="stable")
    tick, note, is_off = ticks[marks], marks >> 1, (marks & 1).astype(bool)
    is_on = ~is_off
    gap = np.empty_like(tick)
    gap[0] = tick[0]
    np.subtract(tick[1:], tick[:-1], out=gap[1:])
    full, rest = np.divmod(gap, MAX_SHIFT_STEPS)
    has_rest = rest > 0
    shifts = full + has_rest
    # a NOTE_ON's bin against the previous NOTE_ON's (0 before the first)
    on_bins = vbin[note[is_on]]
    changed_on = np.empty(n, dtype=bool)
    changed_on[0] = on_bins[0] != 0
    np.not_equal(on_bins[1:], on_bins[:-1], out=changed_on[1:])
    velocity_event = np.zeros(2 * n, dtype=bool)
    velocity_event[is_on] = changed_on
    count = shifts + velocity_event + 1
    last = np.cumsum(count) - 1  # each mark's NOTE_ON or NOTE_OFF
    out = np.full(int(last[-1]) + 1, _SHIFT_LABEL + MAX_SHIFT_STEPS, dtype=np.int64)  # shifts of 100
    out[(last - velocity_event - 1)[has_rest]] = _SHIFT_LABEL + rest[has_rest]
    out[(last - 1)[velocity_event]] = _VELOCITY_LABEL + vbin[note[velocity_event]]
    out[last] = np.where(is_off, _OFFSETS[NOTE_OFF], _OFFSETS[NOTE_ON]) + pitch[note]
    return out


def events_to_score(
    events: Iterable[tuple[str, int]],
    score_id: str = TRACK_NAME,
    program: int = 0,
    default_velocity: int = 100,
) -> Score:
    """A one-track score on the 10 ms grid (50 steps per quarter at 120 qpm).

    Args:
        events: ``(type, value)`` pairs.
        score_id: The returned score's id.
        program: MIDI program of the track (performances carry none).
        default_velocity: Velocity before any VELOCITY event (note-seq's default 100).

    Returns:
        The decoded score. Unmatched NOTE_OFFs are ignored; notes still sounding at the
        end end there; zero-length notes are dropped (all as note-seq).
    """
    sounding: dict[int, deque[tuple[int, int]]] = defaultdict(deque)
    notes: list[Note] = []
    now, velocity = 0, default_velocity
    for etype, value in events:
        if etype == NOTE_ON:
            sounding[value].append((now, velocity))
        elif etype == NOTE_OFF:
            if sounding[value]:
                start, vel = sounding[value].popleft()  # FIFO: the earliest onset ends
                if now > start:
                    notes.append(Note(start, now, value, vel))
        elif etype == TIME_SHIFT:
            now += value
        elif etype == VELOCITY:
            velocity = bin_to_velocity(value)
        else:
            raise ValueError(f"unknown performance event type {etype!r}")
    for pitch, queue in sounding.items():
        notes.extend(Note(start, now, pitch, vel) for start, vel in queue if now > start)
    return _grid_score(score_id, notes, program)


def _grid_score(score_id: str, notes: Iterable[Note], program: int) -> Score:
    return Score(
        id=score_id,
        tracks=(Track(TRACK_NAME, tuple(notes), program=program),),
        steps_per_quarter=GRID_STEPS_PER_QUARTER,
        qpm=GRID_QPM,
    )


def _fifo_pairing(notes: list[Note]) -> list[Note]:
    """Each pitch's k-th onset (in event order) gets its k-th earliest end, as FIFO decoding.

    Keeps the input order, so :func:`count_fifo_repairs` can compare note by note.
    """
    ends: dict[int, list[int]] = defaultdict(list)
    for n in notes:
        ends[n.pitch].append(n.end)
    queues = {p: deque(sorted(e)) for p, e in ends.items()}
    return [Note(n.start, queues[n.pitch].popleft(), n.pitch, n.velocity) for n in notes]


def to_performance_grid(score: Score, program: int = 0) -> Score:
    """The canonical form a score takes through the performance encoding.

    ``decode(encode(score), score_id=score.id, program=program) == to_performance_grid(score)``.

    Args:
        score: Any score.
        program: Program to give the single output track.

    Returns:
        One track named ``"performance"`` at 50 steps per quarter, 120 qpm (1 step = 10 ms),
        4/4, no chords: notes merged, quantized, velocity-binned and FIFO-paired.
    """
    return _grid_score(score.id, _fifo_pairing(_quantized_notes(score)), program)


def count_fifo_repairs(score: Score) -> int:
    """How many notes FIFO pairing changes (nested same-pitch notes), after quantization."""
    notes = _quantized_notes(score)
    return sum(a != b for a, b in zip(notes, _fifo_pairing(notes), strict=True))


def event_to_label(event: tuple[str, int]) -> int:
    """Token id of one event."""
    etype, value = event
    for rtype, lo, hi in EVENT_RANGES:
        if rtype == etype:
            if not lo <= value <= hi:
                raise ValueError(f"{etype} value {value} outside [{lo}, {hi}]")
            return _OFFSETS[etype] + value - lo
    raise ValueError(f"unknown performance event type {etype!r}")


def label_to_event(label: int) -> PerformanceEvent:
    """Event of one token id."""
    label = int(label)
    for rtype, lo, hi in EVENT_RANGES:
        off = _OFFSETS[rtype]
        if off <= label <= off + hi - lo:
            return PerformanceEvent(rtype, lo + label - off)
    raise ValueError(f"label {label} outside [0, {NUM_CLASSES})")


# Mirrors note_seq PerformanceOneHotEncoding (32 velocity bins) and performance_lib.Performance.
class PerformanceEncoding:
    """Score <-> performance tokens (388 classes); see the module docstring for the rules."""

    name = "performance"

    def __init__(self) -> None:
        tokens = [f"{t}_{v}" for t, lo, hi in EVENT_RANGES for v in range(lo, hi + 1)]
        self._vocab = Vocab(tuple(tokens))

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES

    @property
    def input_size(self) -> int:
        return NUM_CLASSES

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    def events_to_labels(self, events: Iterable[tuple[str, int]]) -> np.ndarray:
        """Token ids of events."""
        return np.array([event_to_label(e) for e in events], dtype=np.int64)

    def labels_to_events(self, labels: Sequence[int] | np.ndarray) -> list[PerformanceEvent]:
        """Events of token ids."""
        return [label_to_event(int(x)) for x in np.asarray(labels).reshape(-1)]

    def encode(self, score: Score) -> np.ndarray:
        """Token ids of ``score_to_events(score)`` (computed on arrays: :func:`score_to_labels`)."""
        return score_to_labels(score)

    def decode(
        self,
        labels: Sequence[int] | np.ndarray,
        score_id: str = TRACK_NAME,
        program: int = 0,
    ) -> Score:
        """The score of token ids (see :func:`events_to_score`)."""
        return events_to_score(self.labels_to_events(labels), score_id=score_id, program=program)

    def inputs(self, x: Score | Sequence[int] | np.ndarray) -> np.ndarray:
        """One-hot rows of the tokens, shape ``(T, 388)`` float32 (Performance RNN inputs).

        Args:
            x: A score (encoded first) or token ids. Prefer ids for decoded token streams:
                re-encoding ``decode(labels)`` may order same-tick events differently.
        """
        labels = self.encode(x) if isinstance(x, Score) else np.asarray(x, dtype=np.int64)
        out = np.zeros((len(labels), NUM_CLASSES), dtype=np.float32)
        out[np.arange(len(labels)), labels] = 1.0
        return out
