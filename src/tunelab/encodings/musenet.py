"""MuseNet-style multi-instrument event tokens with style and instrument conditioning.

MuseNet (OpenAI 2019, "MuseNet", Payne) folds instrument, volume and pitch into one
note-on token, so a single vocabulary covers many instruments without separate velocity or
program events. This encoding follows it on our 16th-note step grid.

Token layout (one :class:`~tunelab.encodings.vocab.Vocab`, ids in this order):

* ``style:<s>`` for each configured style (the corpora a joint model trains on);
* ``inst:<i>`` for each of :data:`INSTRUMENTS` (the 16 General MIDI families, then drums);
* ``begin``, ``end``;
* ``wait:<k>``, k = 1..max_wait steps (longer gaps chain: 100 = 48 + 48 + 4);
* ``on:<inst>:<vbin>:<pitch>`` for every instrument, velocity bin 1..velocity_bins and
  pitch 0..127 -- MuseNet's combined instrument:volume:pitch note-on;
* ``off:<inst>:<pitch>``.

A piece reads ``style:<s> inst:<i>... begin`` (the instruments present, in INSTRUMENTS
order), then its events in time order -- at each step note-offs first, then note-ons, each
by (instrument order, pitch), ``wait`` tokens between event times -- and ``end`` after the
last note-off. Velocity bins are equal-width over 1..127 and decode to the bin's centre.

Canonical form (:func:`to_musenet_grid`): a note-on while the same (instrument, pitch)
sounds cannot say which note a later ``off`` ends, and Bach's four voices all map to
``piano``, so unisons between voices are common. Per instrument and pitch, notes starting at
the same step collapse to the longest, and a later onset cuts the sounding note at its
start. The result has one track per instrument (named after it, program
:data:`PROGRAM_OF`) with binned velocities; ``decode(encode(s, style)) == to_musenet_grid(s)``.
:func:`count_unison_cuts` counts the notes this changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from tunelab.encodings.augment import Augmenter
from tunelab.encodings.vocab import Vocab
from tunelab.music.score import Note, Score, Track

INSTRUMENTS: tuple[str, ...] = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive",
    "sound_effects", "drums",
)
DRUMS = "drums"
# Output program of each instrument: the family's first program (drums: 0 on the drum channel).
PROGRAM_OF: dict[str, int] = {name: 8 * i for i, name in enumerate(INSTRUMENTS[:16])} | {DRUMS: 0}
STEPS_PER_QUARTER = 4  # wait tokens count 16th-note steps
NUM_PITCHES = 128
BEGIN, END = "begin", "end"
# Token kinds (the ``_kind`` table of an encoding).
_HEADER, _BEGIN, _END, _WAIT, _ON, _OFF = range(6)
_INST_INDEX = {name: i for i, name in enumerate(INSTRUMENTS)}


def instrument_of(track: Track) -> str:
    """The MuseNet instrument of a track: ``drums`` if it is a drum track, else its GM family."""
    return DRUMS if track.is_drum else INSTRUMENTS[track.program // 8]


def velocity_bin(velocity: int, bins: int) -> int:
    """Equal-width bin 1..bins of a MIDI velocity 1..127."""
    return (velocity - 1) * bins // 127 + 1


def bin_velocity(vbin: int, bins: int) -> int:
    """The centre velocity of a bin (it maps back to the same bin)."""
    members = [v for v in range(1, 128) if velocity_bin(v, bins) == vbin]
    return (members[0] + members[-1]) // 2


def _resolve_unisons(notes: list[Note]) -> tuple[list[Note], int]:
    """One instrument's notes in canonical form, and how many notes that changed.

    Per pitch: same-step onsets keep the longest (then loudest); a later onset cuts the
    sounding note at its start.
    """
    by_pitch: dict[int, list[Note]] = defaultdict(list)
    for n in notes:
        by_pitch[n.pitch].append(n)
    out: list[Note] = []
    changed = 0
    for group in by_pitch.values():
        best: dict[int, Note] = {}
        for n in group:
            if n.start not in best or (n.end, n.velocity) > (best[n.start].end, best[n.start].velocity):
                best[n.start] = n
        changed += len(group) - len(best)
        kept = [best[s] for s in sorted(best)]
        for cur, nxt in zip(kept, [*kept[1:], None], strict=True):
            if nxt is not None and cur.end > nxt.start:
                cur = Note(cur.start, nxt.start, cur.pitch, cur.velocity)
                changed += 1
            out.append(cur)
    return out, changed


def _binned_by_instrument(score: Score, bins: int) -> dict[str, list[Note]]:
    if score.steps_per_quarter != STEPS_PER_QUARTER:
        raise ValueError(f"score {score.id} has steps_per_quarter={score.steps_per_quarter}; "
                         f"the musenet encoding needs {STEPS_PER_QUARTER}")
    notes: dict[str, list[Note]] = defaultdict(list)
    for t in score.tracks:
        inst = instrument_of(t)
        for n in t.notes:
            if n.velocity > 0:  # velocity 0 is MIDI's note-off idiom: no sound
                vel = bin_velocity(velocity_bin(n.velocity, bins), bins)
                notes[inst].append(Note(n.start, n.end, n.pitch, vel))
    return notes


def _instrument_tracks(notes: dict[str, list[Note]]) -> tuple[Track, ...]:
    return tuple(Track(inst, tuple(notes[inst]), program=PROGRAM_OF[inst], is_drum=inst == DRUMS)
                 for inst in INSTRUMENTS if notes.get(inst))


def to_musenet_grid(score: Score, velocity_bins: int = 4) -> Score:
    """The canonical form a score takes through the musenet encoding (module docstring).

    Args:
        score: A score at 4 steps per quarter.
        velocity_bins: Bins of the encoding, so velocities match what decode returns.

    Returns:
        ``score`` with one track per instrument present, named after it, program
        :data:`PROGRAM_OF`, velocities at bin centres and unisons resolved.
    """
    binned = _binned_by_instrument(score, velocity_bins)
    return score.with_tracks(_instrument_tracks({i: _resolve_unisons(ns)[0] for i, ns in binned.items()}))


def count_unison_cuts(score: Score) -> int:
    """How many notes the canonical form collapses or cuts (same instrument and pitch)."""
    return sum(_resolve_unisons(ns)[1] for ns in _binned_by_instrument(score, 1).values())


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


class MuseNetEncoding:
    """Score + style <-> MuseNet-style tokens (see the module docstring for the layout)."""

    name = "musenet"

    def __init__(self, styles: Sequence[str], velocity_bins: int = 4, max_wait: int = 48) -> None:
        styles = tuple(styles)
        if not styles or len(set(styles)) != len(styles):
            raise ValueError(f"styles must be a non-empty list of unique names, got {list(styles)}")
        if not 1 <= velocity_bins <= 127:
            raise ValueError(f"velocity_bins={velocity_bins} must be in 1..127")
        if max_wait < 1:
            raise ValueError(f"max_wait={max_wait} must be >= 1")
        self.styles, self.velocity_bins, self.max_wait = styles, velocity_bins, max_wait
        tokens = [f"style:{s}" for s in styles] + [f"inst:{i}" for i in INSTRUMENTS] + [BEGIN, END]
        tokens += [f"wait:{k}" for k in range(1, max_wait + 1)]
        self._on0 = len(tokens)
        tokens += [f"on:{i}:{b}:{p}" for i in INSTRUMENTS for b in range(1, velocity_bins + 1)
                   for p in range(NUM_PITCHES)]
        self._off0 = len(tokens)
        tokens += [f"off:{i}:{p}" for i in INSTRUMENTS for p in range(NUM_PITCHES)]
        self._vocab = Vocab(tuple(tokens))
        self._wait0 = self._vocab.index("wait:1")
        n = len(tokens)
        kind = np.full(n, _HEADER, dtype=np.int8)
        kind[self._vocab.index(BEGIN)], kind[self._vocab.index(END)] = _BEGIN, _END
        kind[self._wait0:self._wait0 + max_wait] = _WAIT
        kind[self._on0:self._off0], kind[self._off0:] = _ON, _OFF
        self._kind = kind
        self.wait_steps = np.zeros(n, dtype=np.int64)
        """Steps each token advances time (k for ``wait:k``, else 0), shape ``(len(vocab),)``."""
        self.wait_steps[self._wait0:self._wait0 + max_wait] = np.arange(1, max_wait + 1)

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    @property
    def num_classes(self) -> int:
        return len(self._vocab)

    @property
    def input_size(self) -> int:
        return len(self._vocab)

    # -- token ids ---------------------------------------------------------------------
    def on_id(self, instrument: str, vbin: int, pitch: int) -> int:
        """Id of ``on:<instrument>:<vbin>:<pitch>``."""
        return self._on0 + (_INST_INDEX[instrument] * self.velocity_bins + vbin - 1) * NUM_PITCHES + pitch

    def off_id(self, instrument: str, pitch: int) -> int:
        """Id of ``off:<instrument>:<pitch>``."""
        return self._off0 + _INST_INDEX[instrument] * NUM_PITCHES + pitch

    def header(self, style: str, instruments: Iterable[str]) -> np.ndarray:
        """The prompt of a piece: ``style:<style>``, the instruments in INSTRUMENTS order, ``begin``.

        Raises:
            ValueError: an unknown style or instrument, named with the known ones.
        """
        if style not in self.styles:
            raise ValueError(f"unknown style {style!r}; known styles: {list(self.styles)}")
        instruments = set(instruments)
        unknown = sorted(instruments - set(INSTRUMENTS))
        if unknown:
            raise ValueError(f"unknown instruments {unknown}; known: {list(INSTRUMENTS)}")
        names = [f"style:{style}", *(f"inst:{i}" for i in INSTRUMENTS if i in instruments), BEGIN]
        return np.array([self._vocab.index(t) for t in names], dtype=np.int64)

    # -- encode / decode ---------------------------------------------------------------
    def encode(self, score: Score, style: str) -> np.ndarray:
        """Token ids of ``to_musenet_grid(score)`` under ``style`` (module docstring).

        Raises:
            ValueError: unknown style, or a score not at 4 steps per quarter.
        """
        if style not in self.styles:
            raise ValueError(f"unknown style {style!r}; known styles: {list(self.styles)}")
        grid = to_musenet_grid(score, self.velocity_bins)
        out = list(self.header(style, [t.name for t in grid.tracks]))
        events = []  # (step, 0 off / 1 on, instrument order, pitch, token id)
        for t in grid.tracks:
            order = _INST_INDEX[t.name]
            for n in t.notes:
                vbin = velocity_bin(n.velocity, self.velocity_bins)
                events.append((n.start, 1, order, n.pitch, self.on_id(t.name, vbin, n.pitch)))
                events.append((n.end, 0, order, n.pitch, self.off_id(t.name, n.pitch)))
        events.sort()
        now = 0
        for step, *_, token in events:
            while step > now:
                k = min(step - now, self.max_wait)
                out.append(self._wait0 + k - 1)
                now += k
            out.append(token)
        out.append(self._vocab.index(END))
        return np.array(out, dtype=np.int64)

    def _parse(self, label: int) -> tuple[str, int, int]:
        """(instrument, velocity bin, pitch) of an on/off id (bin 0 for offs)."""
        if label >= self._off0:
            i, pitch = divmod(label - self._off0, NUM_PITCHES)
            return INSTRUMENTS[i], 0, pitch
        rest, pitch = divmod(label - self._on0, NUM_PITCHES)
        i, b = divmod(rest, self.velocity_bins)
        return INSTRUMENTS[i], b + 1, pitch

    def decode(self, labels: Sequence[int] | np.ndarray, qpm: float = 120.0,
               score_id: str = "musenet") -> Score:
        """The score of token ids; lenient, so any generated stream decodes.

        Header tokens are skipped, decoding stops at ``end``, an unmatched ``off`` is
        ignored, an ``on`` of a sounding (instrument, pitch) ends that note first, notes
        still sounding at the end end there, zero-length notes are dropped.

        Returns:
            One track per instrument with notes (INSTRUMENTS order), 4 steps per quarter.
        """
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.size and not (0 <= labels.min() and labels.max() < len(self._vocab)):
            raise ValueError(f"labels outside [0, {len(self._vocab)})")
        notes: dict[str, list[Note]] = defaultdict(list)
        sounding: dict[tuple[str, int], tuple[int, int]] = {}
        now = 0

        def close(key: tuple[str, int]) -> None:
            start, vel = sounding.pop(key)
            if now > start:
                notes[key[0]].append(Note(start, now, key[1], vel))

        for label in labels.tolist():
            kind = self._kind[label]
            if kind == _END:
                break
            if kind == _WAIT:
                now += int(self.wait_steps[label])
            elif kind in (_ON, _OFF):
                inst, vbin, pitch = self._parse(label)
                key = (inst, pitch)
                if key in sounding:
                    close(key)
                if kind == _ON:
                    sounding[key] = (now, bin_velocity(vbin, self.velocity_bins))
        for key in list(sounding):
            close(key)
        return Score(score_id, _instrument_tracks(notes), steps_per_quarter=STEPS_PER_QUARTER, qpm=qpm)

    def style_of(self, labels: Sequence[int] | np.ndarray) -> str | None:
        """The first style token's name, or None."""
        for label in np.asarray(labels, dtype=np.int64).reshape(-1).tolist():
            if label < len(self.styles):
                return self.styles[label]
        return None

    def augment(self, labels: Sequence[int] | np.ndarray, transpose: int = 0, velocity_shift: int = 0,
                time_scale: float = 1.0) -> np.ndarray | None:
        """MuseNet's augmentations, by decode -> change notes -> encode (same style).

        Args:
            labels: A piece with a style token.
            transpose: Semitones added to every pitched note (drums keep their pitch).
            velocity_shift: Bins added to every velocity bin, clipped to 1..velocity_bins.
            time_scale: Factor on note starts and ends (rounded to steps; >= 1 step each).

        Returns:
            The augmented token ids, or None if a transposed pitch leaves 0..127.

        Raises:
            ValueError: no style token in ``labels``, or ``time_scale <= 0``.
        """
        style = self.style_of(labels)
        if style is None:
            raise ValueError("augment needs labels that start with a style token")
        if time_scale <= 0:
            raise ValueError(f"time_scale={time_scale} must be > 0")
        score = self.decode(labels)
        tracks = []
        for t in score.tracks:
            shift = 0 if t.is_drum else transpose
            new = []
            for n in t.notes:
                pitch = n.pitch + shift
                if not 0 <= pitch < NUM_PITCHES:
                    return None
                vbin = velocity_bin(n.velocity, self.velocity_bins) + velocity_shift
                vel = bin_velocity(min(max(vbin, 1), self.velocity_bins), self.velocity_bins)
                start = _round_half_up(n.start * time_scale)
                end = max(_round_half_up(n.end * time_scale), start + 1)
                new.append(Note(start, end, pitch, vel))
            tracks.append(Track(t.name, tuple(new), program=t.program, is_drum=t.is_drum))
        return self.encode(score.with_tracks(tracks), style)

    def shift_table(self, transpose: int, velocity_shift: int) -> np.ndarray:
        """Id -> id of the same event transposed and velocity-shifted (-1 where a pitch would
        leave 0..127); non-note ids map to themselves."""
        table = np.arange(len(self.vocab), dtype=np.int64)
        for i, tok in enumerate(self.vocab.tokens):
            kind, *rest = tok.split(":")
            if kind not in ("on", "off"):
                continue
            inst, pitch = rest[0], int(rest[-1]) + (0 if rest[0] == "drums" else transpose)
            if not 0 <= pitch < NUM_PITCHES:
                table[i] = -1
            elif kind == "off":
                table[i] = self.off_id(inst, pitch)
            else:
                vbin = min(max(int(rest[1]) + velocity_shift, 1), self.velocity_bins)
                table[i] = self.on_id(inst, vbin, pitch)
        return table

    def augmenter(self, transpose: int = 0, velocity_shift: int = 0,
                  time_scales: Sequence[float] = (1.0,)) -> Augmenter:
        """MuseNet's training augmentation of a whole piece, drawn afresh per call: a
        transposition in ``[-transpose, transpose]`` and a velocity-bin shift in
        ``[-velocity_shift, velocity_shift]`` mapped id to id through :meth:`shift_table`
        (a piece that would leave 0..127 keeps its pitches), then a time stretch drawn from
        ``time_scales`` (by :meth:`augment`; 1.0 leaves timing alone). Ids outside the vocab
        (a model's start token) pass through."""
        tables = {(t, v): self.shift_table(t, v) for t in range(-transpose, transpose + 1)
                  for v in range(-velocity_shift, velocity_shift + 1)}
        scales = [float(x) for x in time_scales]

        def apply(tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            t = int(rng.integers(-transpose, transpose + 1))
            v = int(rng.integers(-velocity_shift, velocity_shift + 1))
            inside = tokens < len(self.vocab)
            mapped = tokens.copy()
            mapped[inside] = tables[(t, v)][tokens[inside]]
            out = tokens if (mapped < 0).any() else mapped
            scale = scales[int(rng.integers(len(scales)))]
            if scale != 1.0:
                out = self.augment(out, time_scale=scale)
            return out

        return apply

    def inputs(self, labels: Sequence[int] | np.ndarray) -> np.ndarray:
        """One-hot rows of the token ids, shape ``(T, len(vocab))`` float32 (interface parity)."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        out = np.zeros((len(labels), len(self._vocab)), dtype=np.float32)
        out[np.arange(len(labels)), labels] = 1.0
        return out
