"""MusicVAE's data: fixed-length windows of one-hot melody events, one or three parts.

Faithful to Magenta's ``OneHotMelodyConverter`` (magenta/models/music_vae/data.py): melody
events over MIDI 21..108 (90 classes with NO_EVENT and NOTE_OFF), melodies extracted with
``min_bars=1, gap_bars=1, min_unique_pitches=1``, polyphony reduced to the highest note,
the end padded to a bar, at most 100 bars, then windows of ``bars`` bars slid one bar at a
time -- each a new note_seq Melody, so NOTE_OFFs before its first note become NO_EVENT --
and deduplicated per piece. Magenta keeps only 4/4 (16 steps per bar); we also keep
meters whose bar divides 16 steps (2/4, 1/4), so the 2/4 children's songs are usable --
their "bar" windows are two real bars.

The trio is three melody lines per step (melody, bass, harmony), one-hot each, step-major
in the token array: ``[m0, b0, h0, m1, b1, h1, ...]``. Our corpora have no drums, so the
harmony line replaces Magenta's drum part. As in Magenta's ``TrioConverter``, trio windows
are plain slices of the whole part lines, so a part may start with a NOTE_OFF.

A piece's windows are stored concatenated, ``(num_windows * window_steps * num_parts,)``;
:meth:`MusicVAEEncoding.windows` reshapes them to ``(num_windows, window_steps, num_parts)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from tunelab.encodings.augment import Augmenter, transposer
from tunelab.encodings.melody_onehot import MelodyOneHotEncoding
from tunelab.encodings.vocab import Vocab
from tunelab.music.constants import MELODY_NO_EVENT, MELODY_NOTE_OFF, MIN_MIDI_PITCH
from tunelab.music.melody import Melody, extract_melodies, melody_from_track, set_length
from tunelab.music.score import Note, Score, TimeSignature, Track

PIANO_MIN, PIANO_MAX = 21, 108  # Magenta's PIANO_MIN_MIDI_PITCH / PIANO_MAX_MIDI_PITCH
STEPS_PER_BAR = 16  # MusicVAE's bar: 4 quarters of 4 steps
MAX_BARS = 100  # OneHotMelodyConverter(max_bars=100): truncate long melodies before slicing
EVAL_WINDOWS_PER_PIECE = 5  # max_tensors_per_notesequence: the first 5 when not training
CHORD_TONE_RANGE = (60, 72)  # register of the jazz harmony line (the chord's third)
TRIO_PARTS = ("melody", "bass", "harmony")


class MusicVAEEncoding:
    """Windows of ``bars`` bars of ``parts`` one-hot melody lines (90 classes each)."""

    def __init__(self, bars: int, parts: Sequence[str] = ("melody",)) -> None:
        if bars < 1:
            raise ValueError(f"bars={bars}: a MusicVAE window needs at least one bar")
        self.bars = bars
        self.parts = tuple(parts)
        self.melody = MelodyOneHotEncoding(PIANO_MIN, PIANO_MAX + 1)
        self.name = f"{'trio' if len(self.parts) > 1 else 'mel'}_{bars}bar"

    @property
    def vocab(self) -> Vocab:
        return self.melody.vocab

    @property
    def num_parts(self) -> int:
        return len(self.parts)

    @property
    def window_steps(self) -> int:
        return self.bars * STEPS_PER_BAR

    @property
    def input_size(self) -> int:
        return self.num_parts * len(self.vocab)

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Labels of ``(N, window_steps, num_parts)`` melody events, flattened step-major.

        Raises:
            ValueError: a window of the wrong shape or a pitch outside 21..108.
        """
        windows = np.asarray(windows, dtype=np.int64)
        if windows.ndim != 3 or windows.shape[1:] != (self.window_steps, self.num_parts):
            raise ValueError(f"windows of shape {windows.shape}; {self.name} needs "
                             f"(N, {self.window_steps}, {self.num_parts})")
        return self.melody.encode(windows.reshape(-1))

    def windows(self, labels: Sequence[int] | np.ndarray) -> np.ndarray:
        """Labels as ``(N, window_steps, num_parts)`` label windows."""
        labels = np.asarray(labels, dtype=np.int64)
        size = self.window_steps * self.num_parts
        if labels.size % size:
            raise ValueError(f"{labels.size} labels are not whole {self.name} windows of {size}")
        return labels.reshape(-1, self.window_steps, self.num_parts)

    def decode(self, labels: Sequence[int] | np.ndarray) -> np.ndarray:
        """Melody events ``(N, window_steps, num_parts)`` of labels (inverse of :meth:`encode`)."""
        w = self.windows(labels)
        return np.asarray(self.melody.decode(w.reshape(-1)), dtype=np.int64).reshape(w.shape)

    def augmenter(self, transpose: int = 0) -> Augmenter:
        """Magenta's ``NoteSequenceAugmenter(transpose_range=(-t, t))`` on one window: a
        transposition drawn from ``[-t, t]``; NO_EVENT and NOTE_OFF stay, and a window it
        would push outside 21..108 stays put (Magenta deletes the notes that leave the range
        instead)."""
        return transposer(transpose, (2, len(self.vocab)))

    def to_score(self, labels: Sequence[int] | np.ndarray, score_id: str = "decoded",
                 qpm: float = 120.0) -> Score:
        """The windows one after another as a score, one track per part."""
        events = self.decode(labels)
        steps = events.shape[0] * events.shape[1]
        tracks = []
        for p, name in enumerate(self.parts):
            line = tuple(int(e) for e in events[:, :, p].reshape(steps))
            program = 32 if name == "bass" else 0  # GM acoustic bass, else piano
            tracks.append(Track(name, tuple(Melody(line).to_notes()), program=program))
        return Score(id=score_id, tracks=tuple(tracks), qpm=qpm,
                     time_signatures=(TimeSignature(0, 4, 4),))


def slide(events: np.ndarray, window: int, hop: int = STEPS_PER_BAR) -> list[np.ndarray]:
    """Windows of ``window`` steps every ``hop`` steps of one melody line, whole ones only,
    each a new Melody: its leading NOTE_OFFs are rests (:func:`melody_start`). Magenta
    slices Melody objects (data.py ``LegacyEventListOneHotConverter.to_tensors``:
    ``l[i - slice_steps: i]``), and a sliced Melody is rebuilt from its events."""
    return [melody_start(events[i - window:i]) for i in range(window, len(events) + 1, hop)]


def melody_start(events: np.ndarray) -> np.ndarray:
    """A copy of melody events whose NOTE_OFFs before the first note-on are NO_EVENT."""
    # note_seq melodies_lib.py Melody._from_event_list: leading NOTE_OFF -> MELODY_NO_EVENT
    out = np.array(events, dtype=np.int64, copy=True)
    onsets = np.flatnonzero(out >= MIN_MIDI_PITCH)
    head = out[:onsets[0] if onsets.size else len(out)]
    head[head == MELODY_NOTE_OFF] = MELODY_NO_EVENT
    return out


def _tensor_slices(grid: np.ndarray, window: int, hop: int = STEPS_PER_BAR) -> list[np.ndarray]:
    """Windows of a ``(T, parts)`` grid as plain array slices, NOTE_OFFs kept: Magenta's
    TrioConverter slices the parts' encoded tensors (data.py ``TrioConverter._to_tensors_fn``:
    ``encoded_instruments[i][start_step:end_step]``), not Melody objects."""
    return [grid[i - window:i] for i in range(window, len(grid) + 1, hop)]


def unique_windows(windows: list[np.ndarray]) -> list[np.ndarray]:
    """Distinct windows in first-seen order (Magenta dedupes each NoteSequence's slices)."""
    seen, out = set(), []
    for w in windows:
        key = w.tobytes()
        if key not in seen:
            seen.add(key)
            out.append(w)
    return out


def _in_range(events: np.ndarray) -> bool:
    pitches = events[events >= MIN_MIDI_PITCH]
    return bool(((pitches >= PIANO_MIN) & (pitches <= PIANO_MAX)).all())


def _usable_meter(bar: int) -> bool:
    return bar > 0 and STEPS_PER_BAR % bar == 0


def melody_windows(score: Score, bars: int, tracks: Sequence[str] | None = None) -> np.ndarray:
    """Every distinct ``bars``-bar melody window of a score, ``(N, bars * 16, 1)`` events,
    with OneHotMelodyConverter's extraction settings (module docstring)."""
    window = bars * STEPS_PER_BAR
    melodies, _ = extract_melodies(
        score, min_bars=1, max_steps_truncate=MAX_BARS * STEPS_PER_BAR, min_unique_pitches=1,
        gap_bars=1.0, ignore_polyphonic_notes=True, pad_end=True, tracks=tracks)
    out = []
    for m in melodies:
        if not _usable_meter(m.steps_per_bar):
            continue
        events = _padded(list(m.events))  # a 2/4 melody ends on a 16-step line too
        out += [w for w in slide(events, window) if _in_range(w)]
    return _stack(unique_windows(out), window, 1)


def _padded(events: list[int], length: int | None = None) -> np.ndarray:
    """Events extended with NO_EVENT to ``length`` (default: the next 16-step bar line),
    with a NOTE_OFF where a held note would otherwise run on (note_seq ``set_length``)."""
    steps = length if length is not None else len(events) + (-len(events)) % STEPS_PER_BAR
    return np.asarray(set_length(list(events), steps), dtype=np.int64)


def _stack(windows: list[np.ndarray], window: int, parts: int) -> np.ndarray:
    if not windows:
        return np.zeros((0, window, parts), dtype=np.int64)
    return np.stack([w.reshape(window, parts) for w in windows])


def track_line(track: Track, length: int) -> np.ndarray:
    """A track as one melody line from step 0 to ``length`` (highest note of a chord,
    gaps of any length kept), the melody event grid a trio part is made of."""
    events, start = melody_from_track(track, 1, 0, gap_bars=float("inf"),
                                      ignore_polyphonic_notes=True)
    return _padded([MELODY_NO_EVENT] * start + events, length)[:length]


def chord_tone_line(score: Score) -> Track:
    """The jazz trio's harmony part: each chord symbol's third (the fourth of a sus chord)
    in C4..B4, held until the next symbol; ``NC`` and unreadable figures are rests."""
    notes = []
    chords = list(score.chords)
    end_of_piece = score.total_steps
    for ch, nxt in zip(chords, chords[1:] + [None], strict=True):
        end = nxt.step if nxt is not None else end_of_piece
        pc = chord_third(ch.figure)
        if pc is None or end <= ch.step:
            continue
        lo = CHORD_TONE_RANGE[0]
        notes.append(Note(ch.step, end, lo + (pc - lo) % 12))
    return Track("harmony", tuple(notes))


_ROOTS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_FIGURE = re.compile(r"^([A-G])([#b]?)(.*)$")


def chord_third(figure: str) -> int | None:
    """Pitch class of the third of a Weimar Jazz Database chord figure (``C-7``: E-flat,
    ``Bb7``: D, ``Am7b5``: C, ``Fsus7``: B-flat as the suspended fourth); None for ``NC``."""
    m = _FIGURE.match(figure.strip())
    if not m:
        return None
    root = _ROOTS[m.group(1)] + {"#": 1, "b": -1, "": 0}[m.group(2)]
    quality = m.group(3)
    if quality.startswith("sus"):
        interval = 5
    elif quality.startswith(("-", "m", "o")):  # minor, half-diminished, diminished
        interval = 3
    else:
        interval = 4
    return (root + interval) % 12


def trio_windows(score: Score, voices: Sequence[str], bars: int) -> np.ndarray:
    """Every distinct ``bars``-bar window where melody, bass and harmony all play,
    ``(N, bars * 16, 3)`` events; ``voices`` names the score's tracks in that order, with
    ``chords`` meaning the :func:`chord_tone_line` of the score's chord symbols."""
    window = bars * STEPS_PER_BAR
    if any(not _usable_meter(ts.steps_per_bar(score.steps_per_quarter)) for ts in score.time_signatures):
        return _stack([], window, len(voices))
    tracks = [chord_tone_line(score) if v == "chords" else _track(score, v) for v in voices]
    if any(t is None or not t.notes for t in tracks):
        return _stack([], window, len(voices))
    length = min(score.total_steps, MAX_BARS * STEPS_PER_BAR)
    length += -length % STEPS_PER_BAR
    grid = np.stack([track_line(t, length) for t in tracks], axis=1)  # (T, parts)
    out = [w for w in _tensor_slices(grid, window)
           if _in_range(w) and all((w[:, p] >= MIN_MIDI_PITCH).any() for p in range(len(voices)))]
    return _stack(unique_windows(out), window, len(voices))


def _track(score: Score, name: str) -> Track | None:
    try:
        return score.track(name)
    except KeyError:
        return None


def fit_window(grid: np.ndarray, bars: int) -> tuple[np.ndarray, str | None]:
    """Events ``(T, parts)`` cut into whole ``bars``-bar windows ``(N, bars * 16, parts)``,
    or padded to one; the second value says what was done, for a warning (None: it fit).

    Raises:
        ValueError: no notes, or one bar or less.
    """
    grid = np.asarray(grid, dtype=np.int64).reshape(len(grid), -1)
    if not (grid >= MIN_MIDI_PITCH).any():
        raise ValueError("the input has no notes")
    if len(grid) <= STEPS_PER_BAR:
        raise ValueError(f"the input is {len(grid)} steps, one bar or less; MusicVAE needs 2 bars or more")
    window = bars * STEPS_PER_BAR
    if len(grid) < window:
        padded = np.stack([_padded(list(grid[:, p]), window) for p in range(grid.shape[1])], axis=1)
        return padded[None], f"{len(grid)} steps padded to one {bars}-bar window"
    # A note held across a cut becomes a rest in the next window (no onset there).
    whole = [grid[i:i + window] for i in range(0, len(grid) - window + 1, window)]
    dropped = len(grid) - len(whole) * window
    note = None if len(grid) == window else (
        f"{len(grid)} steps cut into {len(whole)} {bars}-bar windows, the last {dropped} steps dropped")
    return np.stack(whole), note
