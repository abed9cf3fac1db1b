"""Memorization: the share of samples that copy at least ``bars`` bars verbatim from the
training set, i.e. whose longest common substring with any training piece, over the
melody events below, is that long.

A piece's melody is its skyline (the highest sounding non-drum note at each step) as one
symbol per step: at an onset the interval in semitones from the previous onset's pitch,
``"hold"`` while that note sounds, ``"rest"`` while nothing does, and ``"start"`` at the
piece's first onset. Intervals make the match transposition-invariant (melody models
train on melodies transposed to C); the price is that a transposed copy is found from the
step after its first onset on, because that onset's interval is taken from a different
preceding note (or is ``"start"``): an exact 2-bar transposed copy measures 2 bars minus
one step unless the note before it matches too.

Training pieces go into one suffix automaton (:class:`CopyIndex`), built once in linear
time, which finds a sample's longest copy in time linear in the sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from tunelab.music.score import Score

Event = int | str  # a semitone interval at an onset, or one of the words below
HOLD, REST, START = "hold", "rest", "start"
MIN_ONSETS = 2  # a run of holds and rests alone matches almost any piece: no copy
_WORD_CODES = {HOLD: 200, REST: 201, START: 202}  # intervals are -127..127: no clash
_SEPARATOR_BASE = 1000  # piece k is followed by the symbol 1000 + k, seen nowhere else


def melody_events(score: Score) -> list[Event]:
    """One symbol per 16th-note step (one grid step) of the score's skyline melody."""
    notes = [n for t in score.tracks if not t.is_drum for n in t.notes]
    if not notes:
        return []
    # Later slices overwrite earlier ones, so the winner at a step is the highest pitch;
    # among equal pitches the note that started first (then the longer) keeps sounding,
    # so a unison re-attack in another voice is not a new onset.
    notes.sort(key=lambda n: (n.pitch, -n.start, n.end))
    owner = np.full(max(n.end for n in notes), -1, dtype=np.int64)
    for i, n in enumerate(notes):
        owner[n.start:n.end] = i
    events: list[Event] = []
    previous, last_pitch = -1, None
    for o in owner.tolist():
        if o < 0:
            events.append(REST)
        elif o == previous:
            events.append(HOLD)
        else:  # a new note on top: its own onset, or a lower note revealed as one ends
            pitch = notes[o].pitch
            events.append(START if last_pitch is None else pitch - last_pitch)
            last_pitch = pitch
        previous = o
    return events


def is_onset(event: Event) -> bool:
    """Whether the event starts a note (an interval or ``"start"``)."""
    return event != HOLD and event != REST


def _codes(events: Iterable[Event]) -> list[int]:
    return [_WORD_CODES[e] if isinstance(e, str) else int(e) for e in events]


class CopyIndex:
    """A suffix automaton over all training pieces' melody events, each piece followed by
    its own separator symbol so that no match spans two pieces.

    States live in parallel lists (transitions, suffix link, longest length) rather than
    objects: about half a million steps build in a few seconds of pure Python.
    """

    def __init__(self, training: Iterable[Score] = ()) -> None:
        self._next: list[dict[int, int]] = [{}]
        self._link: list[int] = [-1]
        self._len: list[int] = [0]
        self._last = 0
        self.pieces = 0
        self.steps = 0
        grids = set()
        for score in training:
            grids.add(score.steps_per_quarter)
            self.add(melody_events(score))
        # the training scores' grid, so samples on another grid are refused; None if unknown
        self.steps_per_quarter: int | None = grids.pop() if len(grids) == 1 else None

    @classmethod
    def from_events(cls, sequences: Iterable[Sequence[Event]]) -> CopyIndex:
        """An index over event sequences given directly (e.g. from :func:`melody_events`)."""
        index = cls()
        for events in sequences:
            index.add(events)
        return index

    def add(self, events: Sequence[Event]) -> None:
        """Append one training piece (and its separator) to the automaton."""
        codes = _codes(events)
        codes.append(_SEPARATOR_BASE + self.pieces)
        nxt, link, length = self._next, self._link, self._len
        last = self._last
        for c in codes:  # the textbook online construction (Blumer et al. 1985)
            cur = len(length)
            length.append(length[last] + 1)
            link.append(0)
            nxt.append({})
            p = last
            while p != -1 and c not in nxt[p]:
                nxt[p][c] = cur
                p = link[p]
            if p != -1:
                q = nxt[p][c]
                if length[p] + 1 == length[q]:
                    link[cur] = q
                else:
                    clone = len(length)
                    length.append(length[p] + 1)
                    link.append(link[q])
                    nxt.append(nxt[q].copy())
                    while p != -1 and nxt[p].get(c) == q:
                        nxt[p][c] = clone
                        p = link[p]
                    link[q] = clone
                    link[cur] = clone
            last = cur
        self._last = last
        self.pieces += 1
        self.steps += len(events)

    @property
    def states(self) -> int:
        return len(self._len)

    def longest_copy(self, events: Sequence[Event], min_onsets: int = MIN_ONSETS) -> int:
        """Length in steps of the longest stretch of ``events`` that occurs in one training
        piece and contains at least ``min_onsets`` onsets.

        Walking the sample through the automaton gives, at each position i, the longest
        match ending at i; every shorter match ending at i is a suffix of it and holds no
        more onsets, so the longest valid match ending at i is that one if it reaches back
        to the ``min_onsets``-th last onset, and none otherwise.
        """
        nxt, link, length = self._next, self._link, self._len
        state, matched, best = 0, 0, 0
        onsets: list[int] = []
        for i, (event, c) in enumerate(zip(events, _codes(events), strict=True)):
            if is_onset(event):
                onsets.append(i)
            while state and c not in nxt[state]:
                state = link[state]
                matched = length[state]
            if c in nxt[state]:
                state = nxt[state][c]
                matched += 1
            else:  # not even at the root: the symbol occurs nowhere in training
                matched = 0
            if min_onsets <= 0 or (len(onsets) >= min_onsets and onsets[-min_onsets] > i - matched):
                best = max(best, matched)
        return best


def _steps_per_bar(score: Score) -> float:
    spq = score.steps_per_quarter
    return score.time_signatures[0].steps_per_bar(spq) if score.time_signatures else 4.0 * spq


def novelty(samples: Sequence[Score], training: Sequence[Score] | CopyIndex, bars: int = 2) -> dict:
    """How much the samples copy from training: the share whose longest copy is at least
    ``bars`` bars (bar length from each sample's first time signature), and the longest
    copies in bars. Pass a prebuilt :class:`CopyIndex` to score many sample sets against
    one training set.
    """
    if not samples:
        raise ValueError("novelty needs at least one sample")
    index = training if isinstance(training, CopyIndex) else CopyIndex(training)
    if index.pieces == 0:
        raise ValueError("novelty needs at least one training piece")
    grid = index.steps_per_quarter
    if grid is not None and any(s.steps_per_quarter != grid for s in samples):
        raise ValueError(f"samples must share the training grid of {grid} steps per quarter; got "
                         f"{sorted({s.steps_per_quarter for s in samples})}")
    in_bars = [index.longest_copy(melody_events(s)) / _steps_per_bar(s) for s in samples]
    return {
        "copied_share": sum(b >= bars for b in in_bars) / len(in_bars),
        "longest_copy_bars_mean": float(np.mean(in_bars)),
        "longest_copy_bars_max": float(max(in_bars)),
        "bars": bars,
        "samples": len(samples),
        "training_pieces": index.pieces,
    }
