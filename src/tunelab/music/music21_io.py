"""music21 streams (MusicXML, ABC, Humdrum scores) to :class:`Score`.

Ties are merged into single notes; a pickup (anacrusis) bar is padded on the left so
that bar lines fall on multiples of the bar length, as the melody extractor expects.
"""

from __future__ import annotations

from music21 import meter, stream, tempo

from tunelab.music.constants import DEFAULT_QPM, DEFAULT_VELOCITY
from tunelab.music.score import Note, Score, Track, score_from_quarters
from tunelab.music.score import quantize_quarters as _step


def pickup_quarters(part: stream.Part) -> float:
    """Quarter notes missing from an incomplete first bar (0.0 without a pickup)."""
    measures = part.getElementsByClass(stream.Measure)
    return float(measures[0].paddingLeft) if measures else 0.0


def track_from_part(part: stream.Part, name: str, steps_per_quarter: int,
                    shift: float = 0.0) -> Track:
    """Notes of one part; chords give one note per pitch, grace notes are dropped.

    Merges ties in place (the part is modified): a copying ``stripTies()`` costs most of
    the parse time of a chorale.
    """
    notes = []
    part.stripTies(inPlace=True)
    for el in part.flatten().notes:
        if el.duration.quarterLength == 0:  # grace notes take no metrical time
            continue
        start = _step(el.offset + shift, steps_per_quarter)
        end = max(_step(el.offset + el.duration.quarterLength + shift, steps_per_quarter), start + 1)
        for p in el.pitches:
            notes.append(Note(start, end, int(p.midi), DEFAULT_VELOCITY))
    return Track(name, tuple(notes))


def score_from_music21(m21: stream.Score | None, piece_id: str, steps_per_quarter: int,
                       parts: list[tuple[stream.Part, str]] | None = None,
                       source: str = "") -> Score:
    """Convert a music21 score; ``parts`` chooses and names the parts (default: all of
    ``m21``'s, which may then be None)."""
    if not parts:
        assert m21 is not None, "score_from_music21 needs a score or parts"
        parts = [(p, p.partName or f"part{i}") for i, p in enumerate(m21.parts)]
    shift = pickup_quarters(parts[0][0])
    tracks = tuple(track_from_part(p, name, steps_per_quarter, shift) for p, name in parts)
    first = parts[0][0].flatten()
    meters = ((ts.offset, ts.numerator, ts.denominator)
              for ts in first.getElementsByClass(meter.TimeSignature))
    marks = list(first.getElementsByClass(tempo.MetronomeMark))
    qpm = float(marks[0].getQuarterBPM()) if marks and marks[0].number else DEFAULT_QPM
    return score_from_quarters(piece_id, tracks, steps_per_quarter, shift, meters, qpm, source)
