"""The data model every stage trusts: a quantized, multi-track score.

Times are integer steps on a grid of ``steps_per_quarter`` steps per quarter note.
Implied defaults, stated once: lacking a tempo a score plays at 120 qpm; lacking a
time signature it is in 4/4; a note without a velocity has velocity 80.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from operator import attrgetter
from pathlib import Path

from tunelab.atomic import atomic_file
from tunelab.music.constants import DEFAULT_QPM, DEFAULT_STEPS_PER_QUARTER, DEFAULT_VELOCITY


def quantize_quarters(quarters: float, steps_per_quarter: int) -> int:
    """The step nearest to a time in quarter notes, ties rounding up; both MusicXML readers
    (music21's and :mod:`tunelab.music.musicxml`) quantize with it, so they agree to the bit."""
    return int(math.floor(float(quarters) * steps_per_quarter + 0.5))


class BadNoteError(ValueError):
    """A note whose pitch, velocity or span is impossible."""


@dataclass(frozen=True, order=True)
class Note:
    """One sounding note: ``start`` inclusive, ``end`` exclusive, both in steps."""

    start: int
    end: int
    pitch: int
    velocity: int = DEFAULT_VELOCITY

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise BadNoteError(f"pitch {self.pitch} outside MIDI range 0..127")
        if self.start < 0 or self.end <= self.start:
            raise BadNoteError(f"note span [{self.start}, {self.end}) is empty or negative")
        if not 0 <= self.velocity <= 127:
            raise BadNoteError(f"velocity {self.velocity} outside 0..127")


def valid_note_columns(start, end, pitch, velocity) -> bool:
    """Whether every row of these integer arrays makes a Note (its checks, array-wise)."""
    if not len(start):
        return True
    # pitch and velocity in 0..127: nothing left after shifting out the low seven bits (a
    # negative int shifts to -1)
    return bool(start.min() >= 0 and (end > start).all() and not ((pitch | velocity) >> 7).any())


def notes_from_columns(start: Iterable[int], end: Iterable[int], pitch: Iterable[int],
                       velocity: Iterable[int]) -> tuple[Note, ...]:
    """Notes from columns of ints that :func:`valid_note_columns` accepted: the same Notes
    as ``map(Note, ...)`` gives, built without re-running each note's checks (twice as fast)."""
    new, out = object.__new__, []
    append = out.append
    for s, e, p, v in zip(start, end, pitch, velocity, strict=True):
        n = new(Note)
        d = n.__dict__
        d["start"] = s
        d["end"] = e
        d["pitch"] = p
        d["velocity"] = v
        append(n)
    return tuple(out)


_NOTE_ORDER = attrgetter("start", "end", "pitch", "velocity")  # Note's fields, in order


def _notes_of_rows(rows: Iterable[Sequence]) -> tuple[Note, ...]:
    """``tuple(Note(*row) for row in rows)``: when every row is four values that pass Note's
    checks, built without re-running them (:func:`notes_from_columns`); else through Note,
    which raises the same error as before for the first bad row."""
    rows = [tuple(r) for r in rows]
    try:
        valid = all(len(r) == 4 and 0 <= r[2] <= 127 and 0 <= r[0] < r[1] and 0 <= r[3] <= 127
                    for r in rows)
    except TypeError:  # not numbers: Note says so
        valid = False
    if valid and rows:
        return notes_from_columns(*zip(*rows, strict=True))
    return tuple(Note(*row) for row in rows)


@dataclass(frozen=True)
class Track:
    """A named part (a voice, an instrument) with its notes sorted by (start, end, pitch)."""

    name: str
    notes: tuple[Note, ...]
    program: int = 0
    is_drum: bool = False

    def __post_init__(self) -> None:
        # the order Note's comparisons give, from keys compared in C (stable, as sorted())
        object.__setattr__(self, "notes", tuple(sorted(self.notes, key=_NOTE_ORDER)))


def sorted_track(name: str, notes: tuple[Note, ...], program: int = 0, is_drum: bool = False) -> Track:
    """``Track(name, notes, program, is_drum)`` for notes already in Track's order (by start,
    end, pitch, velocity; the caller sorted them), without sorting them again."""
    track = object.__new__(Track)
    track.__dict__.update(name=name, notes=notes, program=program, is_drum=is_drum)
    return track


@dataclass(frozen=True)
class TimeSignature:
    step: int
    numerator: int = 4
    denominator: int = 4

    def steps_per_bar(self, steps_per_quarter: int) -> float:
        """Steps in one bar; may be fractional (e.g. 7/16 at 2 steps per quarter)."""
        return steps_per_quarter * self.numerator * 4.0 / self.denominator


@dataclass(frozen=True)
class ChordSymbol:
    """A chord label (lead-sheet figure such as ``Bb7``) starting at ``step``."""

    step: int
    figure: str


@dataclass(frozen=True)
class Score:
    """A quantized piece: tracks on a common step grid plus meter, tempo and chords."""

    id: str
    tracks: tuple[Track, ...]
    steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER
    qpm: float = DEFAULT_QPM
    time_signatures: tuple[TimeSignature, ...] = (TimeSignature(0),)
    chords: tuple[ChordSymbol, ...] = ()
    source: str = ""  # file (relative to the corpus root) the score was read from
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def total_steps(self) -> int:
        return max((n.end for t in self.tracks for n in t.notes), default=0)

    @property
    def num_notes(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    def track(self, name: str) -> Track:
        for t in self.tracks:
            if t.name == name:
                return t
        raise KeyError(f"score {self.id} has no track {name!r}; it has {[t.name for t in self.tracks]}")

    def seconds_per_step(self) -> float:
        return 60.0 / self.qpm / self.steps_per_quarter

    def with_tracks(self, tracks: Iterable[Track]) -> Score:
        return replace(self, tracks=tuple(tracks))

    # -- serialization: compact JSON, one score per line -------------------------------
    def to_dict(self) -> dict:
        # asdict of everything but the notes (asdict would turn every Note into a dict,
        # twice, only for it to be replaced: most of the time of this method)
        d = asdict(replace(self, tracks=()))
        d["tracks"] = [
            {**{k: v for k, v in asdict(replace(t, notes=())).items() if k != "notes"},
             "notes": [[n.start, n.end, n.pitch, n.velocity] for n in t.notes]}
            for t in self.tracks
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Score:
        tracks = tuple(
            Track(
                name=t["name"],
                notes=_notes_of_rows(t["notes"]),
                program=t.get("program", 0),
                is_drum=t.get("is_drum", False),
            )
            for t in d["tracks"]
        )
        return cls(
            id=d["id"],
            tracks=tracks,
            steps_per_quarter=d.get("steps_per_quarter", DEFAULT_STEPS_PER_QUARTER),
            qpm=d.get("qpm", DEFAULT_QPM),
            time_signatures=tuple(TimeSignature(**ts) for ts in d.get("time_signatures", [{"step": 0}])),
            chords=tuple(ChordSymbol(**c) for c in d.get("chords", [])),
            source=d.get("source", ""),
            meta=d.get("meta", {}),
        )


def score_from_quarters(piece_id: str, tracks: tuple[Track, ...], steps_per_quarter: int,
                        pickup: float, meters: Iterable[tuple[float, int, int]], qpm: float,
                        source: str = "") -> Score:
    """The Score of a quarter-note-timed reading (music21's or the fast MusicXML reader's):
    ``meters`` are (offset in quarters, numerator, denominator) in the reader's order, shifted
    by the ``pickup`` that pads an incomplete first bar; repeats of a meter are dropped and the
    last of several at one step wins; 4/4 at step 0 when the first comes later."""
    sigs: list[TimeSignature] = []
    for offset, numerator, denominator in meters:
        step = 0 if offset == 0 else quantize_quarters(offset + pickup, steps_per_quarter)
        sig = TimeSignature(step, numerator, denominator)
        if sigs and sigs[-1].step == step:
            sigs[-1] = sig
        elif not sigs or (sigs[-1].numerator, sigs[-1].denominator) != (sig.numerator, sig.denominator):
            sigs.append(sig)
    if not sigs or sigs[0].step != 0:
        sigs.insert(0, TimeSignature(0))
    return Score(id=piece_id, tracks=tracks, steps_per_quarter=steps_per_quarter, qpm=qpm,
                 time_signatures=tuple(sigs), source=source, meta={"pickup_quarters": pickup})


def write_jsonl_gz(path: Path, records: Iterable[dict]) -> None:
    """Write records as gzipped JSON lines atomically (temp file, then rename)."""
    # mtime=0 and no file name in the gzip header: the same records give the same bytes, so
    # a re-run extract stage leaves everything downstream of it valid in DVC.
    with atomic_file(Path(path)) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")


def read_jsonl_gz(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def save_scores(path: Path, scores: Iterable[Score]) -> None:
    write_jsonl_gz(path, (s.to_dict() for s in scores))


def load_scores(path: Path) -> list[Score]:
    return [Score.from_dict(d) for d in read_jsonl_gz(path)]
