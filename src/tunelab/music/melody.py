"""Monophonic melodies and Magenta's melody extractor.

Faithful to note_seq ``Melody.from_quantized_sequence`` / ``Melody.squash`` and to the
MelodyRNN pipeline's ``MelodyExtractor(min_bars=7, max_steps=512, min_unique_pitches=5,
gap_bars=1.0, ignore_polyphonic_notes=False)`` (magenta/models/melody_rnn/
melody_rnn_pipeline.py). A melody is a list of per-step events: a MIDI pitch (note on),
``MELODY_NOTE_OFF`` or ``MELODY_NO_EVENT``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path

import numpy as np

from tunelab.music.constants import (
    DEFAULT_MAX_NOTE,
    DEFAULT_MIN_NOTE,
    MAX_MIDI_PITCH,
    MELODY_NO_EVENT,
    MELODY_NOTE_OFF,
    MIN_MIDI_PITCH,
    NOTE_KEYS,
    NOTES_PER_OCTAVE,
)
from tunelab.music.score import Note, Score, TimeSignature, Track, read_jsonl_gz

_START = attrgetter("start")


class PolyphonicMelodyError(ValueError):
    """Two notes start on the same step of a track and polyphony is not ignored."""


class NonIntegerStepsPerBarError(ValueError):
    """The time signature does not divide into whole steps at this resolution."""


@dataclass(frozen=True)
class Melody:
    """A monophonic line on the step grid, as Magenta's ``Melody`` event list.

    ``start_step`` is where event 0 sits in the source score (always a bar line);
    ``transpose`` is what :func:`squash` added to every pitch, so generation can undo it.
    """

    events: tuple[int, ...]
    steps_per_bar: int = 16
    steps_per_quarter: int = 4
    start_step: int = 0
    transpose: int = 0
    piece_id: str = ""
    track: str = ""

    def __len__(self) -> int:
        return len(self.events)

    def pitch_class_histogram(self) -> np.ndarray:
        """Count of note onsets per pitch class (note_seq ``get_note_histogram``)."""
        ev = np.asarray(self.events, dtype=int)
        return np.bincount(ev[ev >= MIN_MIDI_PITCH] % NOTES_PER_OCTAVE, minlength=NOTES_PER_OCTAVE)

    def major_key(self) -> int:
        """Most likely major key, 0 = C; ties go to the lowest index (note_seq)."""
        return _major_key(self.pitch_class_histogram())

    def to_notes(self, velocity: int = 80) -> list[Note]:
        """Notes in melody-relative steps (a note runs to the next pitch or NOTE_OFF)."""
        notes: list[Note] = []
        pitch, start = None, 0
        for i, ev in enumerate(self.events):
            if ev == MELODY_NO_EVENT:
                continue
            if pitch is not None:
                notes.append(Note(start, i, pitch, velocity))
                pitch = None
            if ev >= MIN_MIDI_PITCH:
                pitch, start = ev, i
        if pitch is not None:
            notes.append(Note(start, len(self.events), pitch, velocity))
        return notes

    def to_score(self, qpm: float = 120.0, program: int = 0, untranspose: bool = False) -> Score:
        """A one-track score; ``untranspose`` restores the pitches before :func:`squash`."""
        shift = -self.transpose if untranspose else 0
        notes = [replace(n, pitch=n.pitch + shift) for n in self.to_notes()]
        # The bar length is all a melody knows of its meter: n quarters -> n/4, else n/8.
        if self.steps_per_bar % self.steps_per_quarter == 0:
            ts = TimeSignature(0, self.steps_per_bar // self.steps_per_quarter, 4)
        else:
            ts = TimeSignature(0, self.steps_per_bar * 2 // self.steps_per_quarter, 8)
        return Score(
            id=self.piece_id or "melody",
            tracks=(Track("melody", tuple(notes), program=program),),
            steps_per_quarter=self.steps_per_quarter,
            qpm=qpm,
            time_signatures=(ts,),
        )


def set_length(events: list[int], steps: int) -> list[int]:
    """``events`` cut or extended with NO_EVENT to ``steps``, as note_seq's ``Melody.set_length``
    does: extending on the right ends a note still sounding at the old end (a NOTE_OFF there)."""
    old_len = len(events)
    if steps <= old_len:
        return events[:steps]
    out = events + [MELODY_NO_EVENT] * (steps - old_len)
    for e in reversed(events):
        if e == MELODY_NOTE_OFF:
            break
        if e != MELODY_NO_EVENT:
            out[old_len] = MELODY_NOTE_OFF
            break
    return out


def steps_per_bar(score: Score, ts: TimeSignature | None = None) -> int:
    """Whole steps per bar of ``ts`` (default: the score's first time signature)."""
    ts = ts or score.time_signatures[0]
    spb = ts.steps_per_bar(score.steps_per_quarter)
    if spb % 1 != 0:
        raise NonIntegerStepsPerBarError(
            f"{ts.numerator}/{ts.denominator} is {spb} steps per bar at "
            f"{score.steps_per_quarter} steps per quarter"
        )
    return int(spb)


def melody_from_track(
    track: Track,
    bar_steps: int,
    search_start_step: int = 0,
    gap_bars: float = 1.0,
    ignore_polyphonic_notes: bool = False,
    pad_end: bool = False,
) -> tuple[list[int], int]:
    """One melody from ``track`` starting at or after ``search_start_step``.

    Mirrors note_seq ``Melody.from_quantized_sequence``. Returns ``(events, start_step)``;
    events is empty when no note starts at or after ``search_start_step``.

    Raises:
        PolyphonicMelodyError: two notes share an onset and polyphony is not ignored.
    """
    if track.is_drum:
        return [], search_start_step
    notes = track.notes  # sorted by (start, end, pitch, velocity): see Track
    first = bisect_left(notes, search_start_step, key=_START)
    # note_seq takes the notes by (start, -pitch), stably, and adds each with _add_note. The
    # notes of one onset are neighbours here: the first one taken is the first of the highest
    # pitch; a second one at that onset is polyphony (skipped if ignored). So the melody is
    # the chain of onsets until a gap: (start, end, pitch) of each note taken.
    gap = gap_bars * bar_steps
    taken: list[tuple[int, int, int]] = []
    last_off = 0
    i, count = first, len(notes)
    while i < count:
        note = notes[i]
        i += 1
        if note.velocity <= 0:
            continue
        s = note.start
        best = note
        polyphonic = False
        while i < count and notes[i].start == s:  # the rest of this onset
            other = notes[i]
            i += 1
            if other.velocity > 0:
                polyphonic = True
                if other.pitch > best.pitch:
                    best = other
        if taken and s - last_off >= gap:
            break  # a silence of gap_bars or more ends the melody
        if polyphonic and not ignore_polyphonic_notes:
            raise PolyphonicMelodyError(f"track {track.name!r}: two notes start at step {s}")
        taken.append((s, best.end, best.pitch))
        last_off = best.end
    if not taken:
        return [], search_start_step
    # The melody begins on the bar line at or before its first note.
    start = taken[0][0] - (taken[0][0] - search_start_step) % bar_steps
    # What _add_note leaves, note after note: each note's pitch at its onset, NO_EVENT while
    # it sounds, and a NOTE_OFF at its end unless the next onset comes first (a later note
    # overwrites everything from its onset on). The last NOTE_OFF is dropped.
    events = [MELODY_NO_EVENT] * (taken[-1][1] - start)
    next_on = None
    for s, e, p in reversed(taken):
        if next_on is not None and e < next_on:
            events[e - start] = MELODY_NOTE_OFF
        events[s - start] = p
        next_on = s
    if pad_end:
        events = set_length(events, len(events) + -len(events) % bar_steps)
    return events, start


def squash(melody: Melody, min_note: int = DEFAULT_MIN_NOTE, max_note: int = DEFAULT_MAX_NOTE,
           transpose_to_key: int | None = 0) -> Melody:
    """Transpose to ``transpose_to_key`` near the range centre, then fold into [min, max).

    Mirrors note_seq ``Melody.squash``/``transpose``; the amount is kept in ``transpose``.
    """
    ev = np.asarray(melody.events, dtype=np.int64)
    notes = ev >= MIN_MIDI_PITCH
    midi = ev[notes & (ev <= MAX_MIDI_PITCH)]
    if transpose_to_key is None or not len(midi):
        amount = 0
    else:
        key = _major_key(np.bincount(ev[notes] % NOTES_PER_OCTAVE, minlength=NOTES_PER_OCTAVE))
        key_diff = transpose_to_key - key
        center = (int(midi.min()) + int(midi.max())) / 2
        target = (min_note + max_note - 1) / 2
        center_diff = target - (center + key_diff)
        amount = key_diff + NOTES_PER_OCTAVE * int(round(center_diff / float(NOTES_PER_OCTAVE)))
    # as note_seq, one event at a time: shift, then fold an octave at a time into range
    e = ev[notes] + amount
    e = np.where(e < min_note, min_note + (e - min_note) % NOTES_PER_OCTAVE,
                 np.where(e >= max_note, max_note - NOTES_PER_OCTAVE + (e - max_note) % NOTES_PER_OCTAVE, e))
    ev[notes] = e
    return replace(melody, events=tuple(ev.tolist()), transpose=melody.transpose + amount)


# _KEY_OF_PC[pc, key] = 1 when major key ``key`` contains pitch class ``pc`` (NOTE_KEYS)
_KEY_OF_PC = np.zeros((NOTES_PER_OCTAVE, NOTES_PER_OCTAVE))
for _pc, _keys in enumerate(NOTE_KEYS):
    _KEY_OF_PC[_pc, list(_keys)] = 1.0


def _major_key(histogram: np.ndarray) -> int:
    """The major key (0 = C) whose scale holds the most of a pitch-class histogram's onsets;
    ties go to the lowest key (note_seq ``get_major_key_histogram`` then ``argmax``)."""
    return int((histogram @ _KEY_OF_PC).argmax())


@dataclass
class ExtractionStats:
    """Counters named as in Magenta's MelodyExtractor statistics."""

    counts: Counter

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def split_on_time_signatures(score: Score) -> list[tuple[Score, int]]:
    """Split at each time-signature change (as Magenta's TimeChangeSplitter).

    Notes crossing a split are cut there. Returns ``(segment, offset)`` pairs, each
    segment re-based to step 0 with one time signature. Tempo changes need no split:
    tunelab quantizes in quarter notes, not seconds.
    """
    changes = sorted({ts.step: ts for ts in score.time_signatures}.values(), key=lambda t: t.step)
    if len(changes) == 1 and changes[0].step == 0:
        # one segment from step 0 past the last note end: every note is kept as it is
        return [(replace(score, time_signatures=(changes[0],)) if score.time_signatures != (changes[0],)
                 else score, 0)]
    bounds = [ts.step for ts in changes] + [max(score.total_steps, changes[-1].step) + 1]
    pieces = []
    for ts, lo, hi in zip(changes, bounds[:-1], bounds[1:], strict=True):
        tracks = []
        for t in score.tracks:
            notes = tuple(
                Note(max(n.start, lo) - lo, min(n.end, hi) - lo, n.pitch, n.velocity)
                for n in t.notes
                if n.start < hi and n.end > lo and n.start >= lo
            )
            tracks.append(replace(t, notes=notes))
        seg = replace(score, tracks=tuple(tracks), time_signatures=(replace(ts, step=0),))
        pieces.append((seg, lo))
    return pieces


def extract_melodies(
    score: Score,
    min_bars: int = 7,
    max_steps_truncate: int | None = 512,
    min_unique_pitches: int = 5,
    gap_bars: float = 1.0,
    ignore_polyphonic_notes: bool = False,
    pad_end: bool = False,
    tracks: Sequence[str] | None = None,
) -> tuple[list[Melody], Counter]:
    """All melodies of a score, as Magenta's ``extract_melodies`` with MelodyRNN defaults.

    Each track is scanned from the start; a melody ends after a ``gap_bars`` silence and
    the next search begins on the following bar line. Melodies shorter than ``min_bars``
    or with fewer than ``min_unique_pitches`` pitch classes are dropped; longer than
    ``max_steps_truncate`` are truncated, not dropped. A polyphonic track (with
    ``ignore_polyphonic_notes=False``) stops extraction from that track.
    """
    stats: Counter = Counter()
    melodies: list[Melody] = []
    for segment, offset in split_on_time_signatures(score):
        try:
            bar = steps_per_bar(segment)
        except NonIntegerStepsPerBarError:
            stats["non_integer_steps_per_bar"] += 1
            continue
        for track in segment.tracks:
            if tracks is not None and track.name not in tracks:
                continue
            search = 0
            while True:
                try:
                    events, start = melody_from_track(
                        track, bar, search, gap_bars, ignore_polyphonic_notes, pad_end
                    )
                except PolyphonicMelodyError:
                    stats["polyphonic_tracks_discarded"] += 1
                    break
                if not events:
                    break
                end = start + len(events)
                search = end + (-end) % bar  # next bar line (inclusive)
                if len(events) < bar * min_bars:
                    stats["melodies_discarded_too_short"] += 1
                    continue
                if max_steps_truncate is not None and len(events) > max_steps_truncate:
                    cut = max_steps_truncate - (max_steps_truncate % bar if pad_end else 0)
                    events = set_length(events, cut)
                    stats["melodies_truncated"] += 1
                mel = Melody(tuple(events), bar, segment.steps_per_quarter, start + offset,
                             0, score.id, track.name)
                if np.count_nonzero(mel.pitch_class_histogram()) < min_unique_pitches:
                    stats["melodies_discarded_too_few_pitches"] += 1
                    continue
                melodies.append(mel)
    stats["melodies_extracted"] += len(melodies)
    return melodies, stats


def melody_from_record(d: dict) -> tuple[Melody, str]:
    """(melody, split) of one line of ``melodies.jsonl.gz``."""
    split = d.pop("split")
    return Melody(**{**d, "events": tuple(d["events"])}), split


def load_melodies(path: Path) -> list[tuple[Melody, str]]:
    """(melody, split) pairs written by :func:`tunelab.pipeline.extract.extract`."""
    return [melody_from_record(d) for d in read_jsonl_gz(path)]
