"""MusicXML files (``.xml``, ``.mxl``) to :class:`Score`, without music21.

Two readers give the same Score. ``music21`` (``converter.parse`` then
:func:`tunelab.music.music21_io.score_from_music21`) is the reference; ``fast`` (the
default) walks the document with ElementTree and puts every note, rest, time signature
and metronome mark where music21's importer puts it, then merges ties as music21's
``Stream.stripTies`` does, quirks included. It is about 10x faster: music21 builds a
complete object model (beams, lyrics, spanners, layout) that a Score does not need.

Mirrored from music21 10 (``music21/musicxml/xmlToM21.py`` unless another file is named):

* part order and names: ``MusicXMLImporter.xmlRootToScore`` (``<part>`` order; a part
  whose id is not in the part list is skipped); ``PartParser.parseXmlScorePart`` gives
  ``Part.id`` the instrument's ``bestName()``: part name, else abbreviation, else the
  score-instrument's name or abbreviation. A part with ``<staves>`` > 1 becomes one
  ``PartStaff`` per staff number (``PartParser.separateOutPartStaves``), ids
  ``<part id>-Staff<n>``; elements without a ``<staff>`` go to every staff.
* offsets: ``MeasureParser`` (``<backup>`` floors at 0, ``<forward>``, chords advance
  once, grace notes take no time, ``<cue/>`` notes sound like any other) and
  ``PartParser.adjustTimeAttributesFromMeasure``: a measure starts where the previous one's
  *content* ended (``Measure.highestTime``; an overfull bar by a non-round amount, and an
  empty bar, count as the time signature's length), and an incomplete first bar is padded
  on the left (``padAsAnacrusis``) by what it lacks. Full-measure rests get the bar's
  length (``PartParser.xmlMeasureToMeasure``). Files written by Finale (first
  ``<software>``) turn ``<forward>`` into hidden rests, as music21 does.
* numbers: offsets and durations are music21's (``common.opFrac``: a float when the
  denominator is a power of two, else a Fraction), added as music21 adds them, so that
  rounding to steps (:func:`tunelab.music.score.quantize_quarters`) sees the same floats.
* pitches: ``xmlToPitch`` (an ``<accidental>`` counts when there is no ``<alter>``) and
  ``Pitch.midi`` (``music21/pitch.py``: half up, folded into 0..127).
* ties: ``Stream.stripTies`` (``music21/stream/base.py``) walks the part's notes, chords and
  rests in flattened order (offset, then measure, voice, document order) and merges a run
  that starts with a tie start and ends at a tie stop or, lacking one, at the same pitch;
  a chord's tie is its first tied member's, and a merged chord takes all its pitches along.
* tempo: the first ``MetronomeMark``: ``<metronome>`` (one beat unit, its ``per-minute``)
  or ``<sound tempo>`` (music21 keeps that as a playback-only mark, without a number, so
  :func:`~tunelab.music.music21_io.score_from_music21` falls back to 120 qpm).

Not mirrored (no chorale has them; a file that does may differ from the music21 reader):
a part without names whose ``<midi-instrument>`` gives music21 a General MIDI instrument
name as its id; unpitched (percussion) notes, which the fast reader reads as pitchless;
rare error paths (music21 rejects some malformed values the fast reader accepts). A .mxl's
score is the ``rootfile`` its ``META-INF/container.xml`` names (music21 takes the first
``.xml``/``.musicxml`` entry; they agree on every file of music21's corpus).
"""

from __future__ import annotations

import functools
import gc
import io
import math
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from tunelab.music.constants import DEFAULT_QPM, DEFAULT_STEPS_PER_QUARTER, DEFAULT_VELOCITY
from tunelab.music.score import Note, Score, Track, notes_from_columns, score_from_quarters

READERS = ("fast", "music21")

Number = float | Fraction  # music21's offsets and quarter lengths (see _op_frac)


class MusicXMLError(ValueError):
    """A file that cannot be read as MusicXML; the message says why, on one line."""


# -- music21's arithmetic ----------------------------------------------------------------

_DENOM_LIMIT = 65535  # music21.defaults.limitOffsetDenominator


def _op_frac(num: Number | int) -> Number:
    """``music21.common.numberTools.opFrac``: a float when exact in binary, else a Fraction
    (a float's is limited to denominators of 65535)."""
    kind = type(num)
    if kind is float:
        n, d = num.as_integer_ratio()  # type: ignore[union-attr]
        if d <= _DENOM_LIMIT:
            return num  # type: ignore[return-value]
        f = Fraction(n, d).limit_denominator(_DENOM_LIMIT)
        fd = f.denominator
        return f.numerator / (fd + 0.0) if fd & (fd - 1) == 0 else f
    if kind is int:
        return num + 0.0
    d = num.denominator  # type: ignore[union-attr]
    return num.numerator / (d + 0.0) if d & (d - 1) == 0 else num  # type: ignore[union-attr,return-value]


def _add(a: Number, b: Number) -> Number:
    """``opFrac(a + b)`` for opFrac'd a and b: two such floats add exactly (their
    denominators are powers of two up to 2**16), so only Fractions need the call."""
    return a + b if type(a) is float and type(b) is float else _op_frac(a + b)


def _round7_distance_to_multiple(n: Number, unit: float) -> float:
    """The error ``common.nearestMultiple(n, unit)`` reports (n >= 0)."""
    mult = math.floor(n / unit)
    low, high = unit * mult, unit * (mult + 1)
    return round(n - low, 7) if low <= n <= low + unit / 2.0 else round(high - n, 7)


# -- pitches -------------------------------------------------------------------------------

_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Accidental.set (music21/pitch.py): accepted spellings -> (name, alter)
_ACCIDENTALS: dict[str, tuple[str, float]] = {}
for _name, _alter, _aliases in (
        ("natural", 0.0, ("n",)), ("sharp", 1.0, ("#", "is")), ("double-sharp", 2.0, ("##", "isis")),
        ("flat", -1.0, ("-", "es", "b")), ("double-flat", -2.0, ("--", "eses")),
        ("half-sharp", 0.5, ("~", "quarter-sharp", "ih", "semisharp")),
        ("one-and-a-half-sharp", 1.5, ("#~", "three-quarter-sharp", "three-quarters-sharp", "isih",
                                       "sesquisharp")),
        ("half-flat", -0.5, ("`", "quarter-flat", "eh", "semiflat")),
        ("one-and-a-half-flat", -1.5, ("-`", "three-quarter-flat", "three-quarters-flat", "eseh",
                                       "sesquiflat")),
        ("triple-sharp", 3.0, ("###", "isisis")), ("quadruple-sharp", 4.0, ("####", "isisisis")),
        ("triple-flat", -3.0, ("---", "eseses")), ("quadruple-flat", -4.0, ("----", "eseseses"))):
    for _spelling in (_name, *_aliases):
        _ACCIDENTALS[_spelling] = (_name, _alter)
_ALTER_NAMES = {alter: name for name, alter in _ACCIDENTALS.values()}
# MeasureParser.mxAccidentalNameToM21
_MX_ACCIDENTALS = {"quarter-sharp": "half-sharp", "three-quarters-sharp": "one-and-a-half-sharp",
                   "quarter-flat": "half-flat", "three-quarters-flat": "one-and-a-half-flat",
                   "flat-flat": "double-flat", "sharp-sharp": "double-sharp"}


@dataclass(frozen=True, slots=True)
class _Pitch:
    """What music21's Pitch equality (step, octave, accidental name) and ``ps`` see."""

    step: str
    octave: int | None
    accidental: str | None
    ps: float

    @property
    def midi(self) -> int:
        """``Pitch.midi``: ps rounded half up, folded by octaves into 0..127."""
        rounded = math.floor(self.ps + 0.5)
        if rounded > 127:
            value = 12 * 9 + rounded % 12
            return value + 12 if value < 127 - 12 else value
        return rounded % 12 if rounded < 0 else rounded


_DEFAULT_PITCH = _Pitch("C", None, None, 60.0)  # music21's Pitch() for a <note> without <pitch>


_PITCHES: dict[tuple[str | None, ...], _Pitch] = {}  # the texts of a <pitch> -> its _Pitch


def _pitch_of(mx_note: ET.Element) -> _Pitch:
    """xmlToPitch: the <pitch> (an <accidental> without <alter> sets the alter too)."""
    mx_pitch = mx_note.find("pitch")
    if mx_pitch is None:
        return _DEFAULT_PITCH
    key = (mx_pitch.findtext("step"), mx_pitch.findtext("octave"), mx_pitch.findtext("alter"),
           mx_note.findtext("accidental"))
    pitch = _PITCHES.get(key)
    if pitch is None:
        if len(_PITCHES) > 4096:  # a few dozen spellings recur; keep the cache small
            _PITCHES.clear()
        pitch = _PITCHES[key] = _make_pitch(*key)
    return pitch


def _make_pitch(step_text: str | None, octave_text: str | None, alter_text: str | None,
                accidental_text: str | None) -> _Pitch:
    step = "C" if not step_text else step_text.strip().upper()  # Pitch() is a C
    if step not in _STEPS:
        raise MusicXMLError(f"cannot make a step out of {step!r}")
    try:
        octave = int(octave_text) if octave_text else None
        alter = float(alter_text) if alter_text and alter_text.strip() else None
    except ValueError:
        raise MusicXMLError(f"bad pitch: octave {octave_text!r}, alter {alter_text!r}") from None
    accidental = accidental_text.strip().lower() if accidental_text else ""
    if accidental:
        spelling = _MX_ACCIDENTALS.get(accidental, accidental)
        name, shift = _ACCIDENTALS.get(spelling, (spelling, 0.0))  # non-standard: alter 0
        if alter is not None and alter != shift:
            shift = alter  # setAttributeIndependently('alter', ...)
    elif alter is not None:
        if alter not in _ALTER_NAMES:
            raise MusicXMLError(f"incorrect accidental {alter} for pitch {step}{octave}")
        name, shift = _ALTER_NAMES[alter], alter
    else:
        name, shift = None, 0.0
    ps = float(((4 if octave is None else octave) + 1) * 12 + _STEPS[step])
    return _Pitch(step, octave, name, ps + shift)


# -- what music21 builds -------------------------------------------------------------------

NOTE, CHORD, REST, UNPITCHED, PERCUSSION_CHORD = range(5)
_TYPES = {"duplex-maxima", "maxima", "longa", "breve", "whole", "half", "quarter", "eighth", "16th", "32nd",
          "64th", "128th", "256th", "512th", "1024th", "2048th", "zero"}  # duration.typeToDuration
_TYPE_QUARTERS = {"maxima": 32.0, "longa": 16.0, "breve": 8.0, "whole": 4.0, "half": 2.0, "quarter": 1.0,
                  "eighth": 0.5, "16th": 0.25, "32nd": 0.125, "64th": 0.0625, "128th": 0.03125,
                  "256th": 0.015625, "512th": 0.0078125, "1024th": 0.00390625, "2048th": 0.001953125,
                  "duplex-maxima": 64.0, "zero": 0.0}


@dataclass(slots=True)
class _Event:
    """One of music21's GeneralNotes: a note, chord or rest, placed in its measure."""

    offset: Number  # in the measure, later in the part
    ql: Number
    kind: int
    pitches: tuple[_Pitch, ...]
    tie: str | None  # Tie.type (a chord's: its first tied member's)
    grace: bool
    staff: int
    order: tuple[int, int, int]  # (measure, container: voices first, insertion)
    rest_type: tuple[str | None, int, bool] = (None, 0, False)  # Duration (type, dots, tuplets)
    full_measure: bool = False  # Rest.fullMeasure is True


@dataclass
class XmlPart:
    """One part (or one staff of a multi-staff part) as music21 reads it."""

    id: Any  # music21's Part.id (a str; music21's default, the object's id, when unnamed)
    name: str | None  # Part.partName
    events: list[_Event] = field(default_factory=list)
    # (offset in the part, order, numerator, denominator, staff) of each TimeSignature
    time_signatures: list[tuple[Number, tuple[int, int, int], int, int, int]] = field(default_factory=list)
    # (offset, order, quarter bpm or None when the mark has no number, staff) of each MetronomeMark
    tempos: list[tuple[Number, tuple[int, int, int], float | None, int]] = field(default_factory=list)
    pickup: float = 0.0  # the first measure's paddingLeft


def _text(el: ET.Element | None) -> str:
    """``strippedText``: an element's stripped text, '' when absent."""
    if el is None or el.text is None:
        return ""
    return el.text.strip()


def _int_or_text(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _clean(s: str | None) -> str | None:
    return None if s is None else s.strip().replace("\n", " ")


def _seta_text(parent: ET.Element, tag: str) -> str | None:
    """The text ``_setAttributeFromTagText`` would set: the first ``tag``'s, unless empty."""
    el = parent.find(tag)
    if el is None or el.text in (None, ""):
        return None
    return el.text


def _staff_of(el: ET.Element) -> int:
    """``MeasureParser.getStaffNumber`` for notes, forwards, directions, harmonies."""
    staff = el.find("staff")
    if staff is not None and staff.text is not None:
        try:
            return int(staff.text.strip())
        except ValueError:
            pass
    return 0


def _number_attr(el: ET.Element, default: int) -> int:
    """``getStaffNumber`` for elements numbered by attribute (clef, key, time...)."""
    try:
        n = el.get("number")
        if n is not None:
            return int(n)
    except ValueError:
        pass
    return default


def _duration_type(text: str) -> str:
    """``musicXMLTypeToType``."""
    if text in _TYPES:
        return text
    if text == "long":
        return "longa"
    if text == "32th":
        return "32nd"
    raise MusicXMLError(f"unknown note type {text!r}")


def _meter(mx_time: ET.Element) -> tuple[int, int] | None:
    """(numerator, denominator) of music21's TimeSignature for a <time>, None for
    senza-misura (not a TimeSignature in music21)."""
    if mx_time.find("senza-misura") is not None:
        return None
    beats, types = [], []
    for child in mx_time:
        if child.tag == "beats":
            beats.append(_text(child))
        elif child.tag == "beat-type":
            types.append(_text(child))
        elif child.tag == "interchangeable":
            break
    pairs = list(zip(beats, types, strict=False))
    if not pairs:
        raise MusicXMLError("a <time> without <beats>/<beat-type>")
    try:
        terms = [(sum(int(b) for b in num.split("+")), int(den)) for num, den in pairs]
    except ValueError:
        raise MusicXMLError(f"cannot read time signature {'+'.join(f'{n}/{d}' for n, d in pairs)}") from None
    if any(den <= 0 or num <= 0 for num, den in terms):
        raise MusicXMLError(f"cannot read time signature {'+'.join(f'{n}/{d}' for n, d in pairs)}")
    den = math.lcm(*(d for _, d in terms))  # meter.TimeSignature.load('3/8+4/4') is 11/8
    return sum(n * den // d for n, d in terms), den


@functools.cache
def _bar_quarters(numerator: int, denominator: int) -> Number:
    return _op_frac(Fraction(4 * numerator, denominator))


# -- reading a part --------------------------------------------------------------------------

class _PartReader:
    """``PartParser`` and ``MeasureParser``, reduced to what a Score needs."""

    def __init__(self, finale: bool) -> None:
        self.finale = finale
        self.divisions: float = 10080.0  # music21.defaults.divisionsPerQuarter
        self.seq = 0
        self.events: list[_Event] = []
        self.sigs: list[tuple[Number, tuple[int, int, int], int, int, int]] = []
        self.tempos: list[tuple[Number, tuple[int, int, int], float | None, int]] = []
        self.staff_keys: set[int] = set()
        self.max_staves = 1
        self.last_ts: tuple[int, int] | None = None  # PartParser.lastTimeSignature
        self.context_ts: tuple[int, int] | None = None  # the latest time signature so far
        self.last_measure_offset: Number = 0.0
        self.last_measure_was_short = False
        self.pickup = 0.0
        self._ql_cache: dict[tuple[str, float], Number] = {}

    def quarters(self, text: str) -> Number:
        """A <duration>'s quarter length, as ``float(text) / divisions`` through opFrac."""
        key = (text, self.divisions)
        q = self._ql_cache.get(key)
        if q is None:
            try:
                q = _op_frac(float(text) / self.divisions)
            except (ValueError, ZeroDivisionError):
                raise MusicXMLError(f"bad duration {text!r} (divisions {self.divisions:g})") from None
            self._ql_cache[key] = q
        return q

    def read(self, mx_part: ET.Element) -> None:
        measures = mx_part.findall("measure")
        last = len(measures) - 1
        for index, mx_measure in enumerate(measures):
            try:
                self.measure(mx_measure, index, index == last)
            except MusicXMLError as e:
                raise MusicXMLError(f"measure {mx_measure.get('number', index + 1)}: {e}") from None

    def next_order(self, measure: int, container: int) -> tuple[int, int, int]:
        self.seq += 1
        return (measure, container, self.seq)

    def measure(self, mx: ET.Element, index: int, is_last: bool) -> None:
        """One <measure>: MeasureParser.parse, then what PartParser does with the measure."""
        # <print> first (MeasureParser.parse): a numbered staff-layout names a staff
        for mx_print in mx.findall("print"):
            for layout in mx_print.iterfind("staff-layout"):
                if layout.get("number") is not None:
                    self.staff_keys.add(_number_attr(layout, 0))
        # updateVoiceInformation: voices only where a measure names two or more
        voice_ids = set()
        for tag in ("note", "forward"):
            for el in mx.findall(tag):
                mx_voice = el.find("voice")
                if mx_voice is not None and mx_voice.text is not None and (v := mx_voice.text.strip()):
                    voice_ids.add(v)
        use_voices = len(voice_ids) > 1
        voices = {v: i for i, v in enumerate(sorted(voice_ids))} if use_voices else {}
        level = len(voices)  # the measure's own elements recurse after its voices
        last_voice: str | int | None = None

        def container(mx_voice: ET.Element | None) -> int:
            """findM21VoiceFromXmlVoice: the voice an element goes in."""
            nonlocal last_voice
            if not use_voices:
                return level
            text = _text(mx_voice)
            if text:
                use: str | int = text
                last_voice = _int_or_text(text)
            else:
                use = last_voice if last_voice is not None else 1
            if use in voices:
                return voices[use]  # type: ignore[index]
            try:
                int(use)
            except ValueError:
                raise MusicXMLError(f"voice {use!r} not found") from None
            return voices.get(str(use), level)

        events: list[_Event] = []
        other_offsets: list[Number] = []  # zero-length objects (directions, clefs...): highestTime
        sigs: list[tuple[Number, int, int, int, int]] = []  # (offset, seq, num, den, staff)
        tempos: list[tuple[Number, int, float | None, int]] = []  # (offset, seq, qpm, staff)
        offset: Number = 0.0
        chord: list[ET.Element] = []
        rests = notes = 0
        full_measure_rest = False
        staves = 1
        finale_rest: _Event | None = None
        elements = list(mx)

        def insert_other(at: Number, staff: int) -> None:
            other_offsets.append(at)
            if staff:
                self.staff_keys.add(staff)

        def direction_offset(el: ET.Element) -> float:
            """xmlToOffset: <offset> in quarters, 0.0 when absent or unreadable."""
            try:
                return float(el.find("offset").text.strip()) / self.divisions  # type: ignore[union-attr]
            except (ValueError, AttributeError):
                return 0.0

        def add_tempo(at: Number, qpm: float | None, staff: int) -> None:
            self.seq += 1
            tempos.append((at, self.seq, qpm, staff))
            insert_other(at, staff)

        def sound_tempo(mx_sound: ET.Element, at: Number, staff: int) -> None:
            """setSoundTempo: a playback-only MetronomeMark (number None); tempo 0 is skipped."""
            try:
                qpm = float(mx_sound.get("tempo", 0))
            except ValueError:
                raise MusicXMLError(f"bad sound tempo {mx_sound.get('tempo')!r}") from None
            if qpm != 0:
                add_tempo(at, None, staff)

        def note_quarters(mx_note: ET.Element) -> tuple[Number, str]:
            """xmlToDuration's quarter length, and the checked duration type ('' if none)."""
            mx_duration = mx_note.find("duration")
            if mx_duration is not None:
                if mx_duration.text is None:
                    raise MusicXMLError("empty <duration>")
                ql = quarters(mx_duration.text.strip())
            else:
                ql = 0.0
            mx_type = mx_note.find("type")
            type_text = "" if mx_type is None or mx_type.text is None else mx_type.text.strip()
            return ql, _duration_type(type_text) if type_text else ""

        def note_duration(mx_note: ET.Element) -> tuple[Number, tuple[str | None, int, bool]]:
            """xmlToDuration: the quarter length and the Duration's (type, dots, tuplets)."""
            ql, kind = note_quarters(mx_note)
            if kind:
                return ql, (kind, len(mx_note.findall("dot")), mx_note.find("time-modification") is not None)
            return ql, (None, 0, False)

        def tie_of(mx_note: ET.Element) -> str | None:
            """xmlToTie: one type as is; start and stop make continue; anything else start."""
            ties = mx_note.findall("tie")
            if not ties:
                return None
            found = [t.get("type") for t in ties if t.get("type") is not None]
            if len(found) == 1:
                return found[0]
            return "continue" if "stop" in found and "start" in found else "start"

        def simple(mx_note: ET.Element) -> tuple[int, tuple[_Pitch, ...], Number, bool]:
            """xmlToSimpleNote: kind, pitches, quarter length, grace (a note's Duration
            type, dots and tuplets make no difference to a Score: only its type is checked)."""
            ql = note_quarters(mx_note)[0]
            grace = mx_note.find("grace") is not None
            if grace:
                ql = 0.0  # a GraceDuration
            if mx_note.find("unpitched") is not None:
                return UNPITCHED, (), ql, grace
            return NOTE, (_pitch_of(mx_note),), ql, grace

        quarters, ql_cache = self.quarters, self._ql_cache
        count = len(elements)
        chord_of = -1, False  # (index, whether that element is a <note> with a <chord/>): the
        # look-ahead of one note tells the next whether it has one
        for i, el in enumerate(elements):
            tag = el.tag
            if tag == "note":
                nxt = elements[i + 1] if i + 1 < count else None
                next_is_chord = nxt is not None and nxt.tag == "note" and nxt.find("chord") is not None
                is_rest = el.find("rest") is not None
                this_is_chord = chord_of[1] if chord_of[0] == i else el.find("chord") is not None
                is_chord = this_is_chord or next_is_chord
                chord_of = i + 1, next_is_chord
                if next_is_chord:
                    mx_voice = el.find("voice")
                    if mx_voice is not None:
                        last_voice = None if mx_voice.text is None else _int_or_text(mx_voice.text)
                increment: Number = 0.0
                if is_chord:
                    chord.append(el)  # a rest among them becomes a C4, as in music21
                else:
                    if is_rest:
                        rests += 1
                        ql, dur = note_duration(el)
                        grace = el.find("grace") is not None
                        if grace:
                            ql = 0.0
                        rest_tag = el.find("rest")
                        full = False
                        if rest_tag.get("measure") == "yes":  # type: ignore[union-attr]
                            rest_type = _text(el.find("type"))
                            if not rest_type or rest_type in ("whole", "breve"):
                                full = full_measure_rest = True
                        event = _Event(offset, ql, REST, (), tie_of(el), grace, _staff_of(el),
                                       self.next_order(index, container(el.find("voice"))), dur, full)
                    else:  # simple(), tie_of(), _staff_of() and next_order(), inline
                        notes += 1
                        mx_duration = el.find("duration")  # note_quarters(), inline
                        if mx_duration is not None:
                            if mx_duration.text is None:
                                raise MusicXMLError("empty <duration>")
                            text = mx_duration.text.strip()
                            ql = ql_cache.get((text, self.divisions))
                            if ql is None:
                                ql = quarters(text)
                        else:
                            ql = 0.0
                        mx_type = el.find("type")
                        if mx_type is not None and mx_type.text is not None:
                            type_text = mx_type.text.strip()
                            if type_text and type_text not in _TYPES:
                                _duration_type(type_text)  # raises unless a known alias
                        grace = el.find("grace") is not None
                        if grace:
                            ql = 0.0  # a GraceDuration
                        if el.find("unpitched") is not None:
                            kind, pitches = UNPITCHED, ()
                        else:
                            kind, pitches = NOTE, (_pitch_of(el),)
                        tie = tie_of(el) if el.find("tie") is not None else None
                        staff = _staff_of(el) if el.find("staff") is not None else 0
                        where = container(el.find("voice")) if use_voices else level
                        self.seq += 1
                        event = _Event(offset, ql, kind, pitches, tie, grace, staff, (index, where, self.seq))
                    events.append(event)
                    increment = event.ql
                if chord and not next_is_chord:
                    members = [simple(mx_note) for mx_note in chord]  # type: ignore[misc]
                    ties = [tie_of(mx_note) for mx_note in chord]
                    kind = PERCUSSION_CHORD if any(m[0] == UNPITCHED for m in members) else CHORD
                    voice_el = next((n.find("voice") for n in chord if n.find("voice") is not None), None)
                    first = members[0]
                    event = _Event(offset, first[2], kind, tuple(p for m in members for p in m[1]),
                                   next((t for t in ties if t is not None), None), first[3],
                                   _staff_of(chord[0]), self.next_order(index, container(
                                       voice_el if voice_el is not None else el.find("voice"))))
                    events.append(event)
                    increment = event.ql
                    chord = []
                if type(offset) is float and type(increment) is float:  # _add, inline
                    offset = offset + increment
                else:
                    offset = _op_frac(offset + increment)
                finale_rest = None
            elif tag == "backup":
                text = _text(el.find("duration"))
                if text:
                    offset = max(_op_frac(offset - self.quarters(text)), 0.0)
            elif tag == "forward":
                text = _text(el.find("duration"))
                if text:
                    change = self.quarters(text)
                    if self.finale:  # xmlForward: Finale's forwards are hidden rests
                        finale_rest = _Event(offset, change, REST, (), None, False, _staff_of(el),
                                             self.next_order(index, container(el.find("voice"))),
                                             (None, 0, False))
                        events.append(finale_rest)
                        if finale_rest.staff:
                            self.staff_keys.add(finale_rest.staff)
                    offset = _add(offset, change)
            elif tag == "direction":
                at = _op_frac(float(direction_offset(el) + offset))
                staff = _staff_of(el)
                metronome = False
                for mx_type in el.findall("direction-type"):
                    for mx_dir in mx_type:
                        dtag = mx_dir.tag
                        if dtag == "dynamics":
                            for _ in mx_dir:
                                insert_other(at, staff)
                        elif dtag in ("coda", "segno", "rehearsal", "words"):
                            insert_other(at, staff)
                        elif dtag == "metronome":
                            metronome = True
                            mark = _metronome(mx_dir)
                            if mark is False:
                                insert_other(at, staff)  # a MetricModulation, not a MetronomeMark
                            else:
                                add_tempo(at, mark, staff)
                if not metronome:
                    for mx_sound in el.findall("sound"):
                        if "tempo" in mx_sound.attrib:
                            sound_tempo(mx_sound, at, staff)
                            break
            elif tag == "attributes":
                for sub in el:
                    stag = sub.tag
                    if stag == "time":
                        staff = _number_attr(sub, 0)
                        meter = _meter(sub)
                        if meter is not None:
                            self.seq += 1
                            sigs.append((offset, self.seq, meter[0], meter[1], staff))
                        insert_other(offset, staff)
                    elif stag in ("clef", "staff-details"):
                        insert_other(offset, _number_attr(sub, 1))
                    elif stag == "key":
                        insert_other(offset, _number_attr(sub, 0))
                    elif stag == "divisions":
                        try:
                            self.divisions = _op_frac(float(sub.text))  # type: ignore[arg-type,assignment]
                        except (TypeError, ValueError):
                            raise MusicXMLError(f"bad divisions {sub.text!r}") from None
                        if self.divisions == 0:
                            raise MusicXMLError("divisions 0")
                    elif stag == "staves":
                        try:
                            staves = int(sub.text)  # type: ignore[arg-type]
                        except (TypeError, ValueError):
                            raise MusicXMLError(f"bad staves {sub.text!r}") from None
            elif tag == "sound":
                if "tempo" in el.attrib:
                    sound_tempo(el, _op_frac(direction_offset(el) + offset), 0)
            elif tag == "harmony":
                insert_other(_op_frac(offset + direction_offset(el)), _staff_of(el))

        if staves > self.max_staves:
            self.max_staves = staves
        for e in events:
            if e.staff:
                self.staff_keys.add(e.staff)
        if rests == 1 and notes == 0:
            full_measure_rest = True

        # PartParser.setLastMeasureInfo: the time signature at offset 0 of the measure
        at_zero = next(((num, den) for at, _, num, den, _ in sigs if at == 0), None) if sigs else None
        if at_zero is not None:
            self.last_ts = at_zero
        elif self.last_ts is None:
            self.last_ts = (4, 4)
        bar = _bar_quarters(*self.last_ts)
        if full_measure_rest:
            # xmlMeasureToMeasure: the first rest (voices first) may take the bar's length
            r1 = min((e for e in events if e.kind == REST),
                     key=lambda e: (e.order[1], e.offset, not e.grace, e.order[2]))
            r_type, dots, tuplets = r1.rest_type
            if r_type is None:  # a Duration made from its quarter length
                r_type = "whole" if r1.ql == 4 else "breve" if r1.ql == 8 else None
            if r1.full_measure or (r1.ql != bar and r_type in ("whole", "breve") and dots == 0
                                   and not tuplets):
                r1.ql = bar
                r1.full_measure = True

        # Measure.highestTime (voices are elements of length highestTime): a running
        # max(highest, x) from 0.0, which keeps the first of equal values
        ends = [e.offset + e.ql for e in events]
        ends += other_offsets
        top = max(ends) if ends else 0.0
        highest: Number = _op_frac(top if top > 0.0 else 0.0)

        # PartParser.adjustTimeAttributesFromMeasure
        if highest == bar:
            shift: Number = highest
        elif highest > bar:
            diff = highest - bar
            round_diff = (diff > 0.5 or _round7_distance_to_multiple(diff, 0.0625) < 1e-6
                          or _round7_distance_to_multiple(diff, 1 / 12) < 1e-6)
            shift = highest if round_diff else bar
        elif highest == 0.0 and not events:
            # an empty bar gets a rest of the bar's length (PDFtoMusic's omitted rests)
            events.append(_Event(0.0, bar, REST, (), None, False, 0, self.next_order(index, level)))
            shift = bar
            self.last_measure_was_short = False
        else:
            shift = highest
            # Measure.barDuration: the bar's first time signature, else the one before it;
            # without either music21 fits one to the content (bestTimeSignature): no padding
            own = min(sigs, key=lambda s: (s[0], s[1])) if sigs else None
            meter = (own[2], own[3]) if own is not None else self.context_ts
            proportion = _op_frac(highest / _bar_quarters(*meter)) if meter is not None else 1.0
            if self.last_measure_offset == 0.0:
                if proportion < 1 and index == 0:  # padAsAnacrusis
                    self.pickup = float(_op_frac(_bar_quarters(*meter) * (1 - proportion)))  # type: ignore[misc]
            elif self.last_measure_was_short:
                if proportion < 1:
                    self.last_measure_was_short = False
            else:
                self.last_measure_was_short = highest < bar
        if sigs:
            last_sig = max(sigs, key=lambda s: (s[0], s[1]))
            self.context_ts = (last_sig[2], last_sig[3])

        if is_last and self.finale and finale_rest is not None and not use_voices:
            # removeFinaleIncorrectEndingForwardRest: Finale closes an incomplete last bar
            # with a <forward>; music21 drops that rest when it is the bar's last element
            last = max(events, key=lambda e: (e.offset, not e.grace, e.order[2]))
            if last is finale_rest:
                events.remove(finale_rest)

        measure_offset = _op_frac(self.last_measure_offset)
        if type(measure_offset) is float:
            for e in events:  # _add, inline for floats
                e.offset = measure_offset + e.offset if type(e.offset) is float else _op_frac(
                    measure_offset + e.offset)
        else:
            for e in events:
                e.offset = _add(measure_offset, e.offset)
        self.events += events
        for at, seq, num, den, staff in sigs:
            self.sigs.append((_op_frac(measure_offset + at), (index, level, seq), num, den, staff))
        for at, seq, qpm, staff in tempos:
            self.tempos.append((_op_frac(measure_offset + at), (index, level, seq), qpm, staff))
        self.last_measure_offset = self.last_measure_offset + shift


def _metronome(mx: ET.Element) -> float | None | bool:
    """xmlToTempoIndication: one beat unit makes a MetronomeMark (its quarter bpm, None
    without a number), two a MetricModulation (False)."""
    referents: list[list[float]] = []  # [quarters, dots]
    numbers: list[float] = []
    for child in mx:
        if child.tag == "beat-unit":
            referents.append([_TYPE_QUARTERS[_duration_type(child.text or "")], 0])
        elif child.tag == "beat-unit-dot":
            if not referents:
                raise MusicXMLError("metronome components out of order")
            referents[-1][1] += 1
        elif child.tag == "per-minute":
            if child.text is not None and child.text.strip() != "":
                try:
                    numbers.append(float(child.text))
                except ValueError:
                    pass  # music21 ignores a text tempo
    if len(referents) > 1:
        return False
    quarters = 1.0
    if referents:
        base, dots = referents[0]
        quarters = base * (2 ** (dots + 1) - 1) / 2 ** dots  # common.dotMultiplier
    number = numbers[0] if numbers else None
    if not number:  # score_from_music21 reads a mark only when its number is truthy
        return None
    # MetronomeMark.getQuarterBPM -> tempo.convertTempoByReferent(number, quarters, 1.0)
    return float(60 / ((60 / number) / quarters * 1.0))


def _parts_of(root: ET.Element) -> list[XmlPart]:
    """The parts (and staves) of a <score-partwise>, in music21's order."""
    score_parts: dict[str | None, ET.Element] = {}
    part_list = root.find("part-list")
    if part_list is not None:
        for el in part_list:
            if el.tag == "score-part":
                score_parts[el.get("id")] = el
    finale = False  # MusicXMLImporter.processEncoding: the first <software> names Finale
    identification = root.find("identification")
    encoding = None if identification is None else identification.find("encoding")
    if encoding is not None:
        software = next((t for s in encoding.findall("software") if (t := _text(s))), "")
        finale = "Finale" in software
    out: list[XmlPart] = []
    for mx_part in root.findall("part"):
        part_id = mx_part.get("id")
        if part_id is None and score_parts:
            part_id = next(iter(score_parts))
        score_part = score_parts.get(part_id)
        if score_part is None:
            continue  # music21 skips a part missing from the part list
        name = _clean(_seta_text(score_part, "part-name"))
        # Instrument.bestName(): music21's Part.id
        instrument = score_part.find("score-instrument")
        best = next((n for n in (
            name, _clean(_seta_text(score_part, "part-abbreviation")),
            None if instrument is None else _clean(_seta_text(instrument, "instrument-name")),
            None if instrument is None else _clean(_seta_text(instrument, "instrument-abbreviation")),
        ) if n is not None), None)
        reader = _PartReader(finale)
        reader.read(mx_part)
        if reader.max_staves == 1:
            out.append(XmlPart(best, name, reader.events, reader.sigs, reader.tempos, reader.pickup))
            continue
        for key in sorted(reader.staff_keys - {0}):  # separateOutPartStaves
            mine = (0, key)
            out.append(XmlPart(
                f"{part_id}-Staff{key}", name,
                [_copy(e) for e in reader.events if e.staff in mine],
                [s for s in reader.sigs if s[4] in mine],
                [t for t in reader.tempos if t[3] in mine], reader.pickup))
    return out


def _copy(e: _Event) -> _Event:
    return _Event(e.offset, e.ql, e.kind, e.pitches, e.tie, e.grace, e.staff, e.order, e.rest_type,
                  e.full_measure)


# -- files -----------------------------------------------------------------------------------

def _rootfile(archive: zipfile.ZipFile) -> str:
    """The score in a .mxl: the container's first rootfile, else music21's choice (the first
    .xml/.musicxml entry outside META-INF)."""
    names = archive.namelist()
    if "META-INF/container.xml" in names:
        try:
            container = ET.fromstring(archive.read("META-INF/container.xml"))
            for el in container.iter():
                if el.tag.rsplit("}", 1)[-1] == "rootfile" and el.get("full-path") in names:
                    return el.get("full-path")  # type: ignore[return-value]
        except ET.ParseError:
            pass
    for name in names:
        if "META-INF" not in name and (Path(name).suffix in (".musicxml", ".xml", ".mxl") or name == ".xml"):
            return name
    raise MusicXMLError("no MusicXML file in the .mxl archive")


def _xml_root(data: bytes) -> ET.Element:
    if not data.strip():
        raise MusicXMLError("empty file")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise MusicXMLError(f"not well-formed XML ({e})") from None
    if root.tag != "score-partwise":
        raise MusicXMLError(f"root element <{root.tag}>, not <score-partwise>")
    return root


def _read_root(path: Path) -> ET.Element:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MusicXMLError(f"cannot read the file ({e.strerror or e})") from None
    if not data:
        raise MusicXMLError("empty file")
    if path.suffix == ".mxl":
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as e:
            # music21 (converter.ArchiveManager) reads a .mxl that is no zip as plain XML
            if data.lstrip()[:1] != b"<":
                raise MusicXMLError(f"corrupt .mxl: not a zip archive ({e})") from None
        else:
            with archive:
                try:
                    data = archive.read(_rootfile(archive))
                except (zipfile.BadZipFile, zlib.error, KeyError, OSError, EOFError, RuntimeError,
                        NotImplementedError) as e:
                    raise MusicXMLError(f"corrupt .mxl: {type(e).__name__}: {e}") from None
    return _xml_root(data)


def parse_parts(path: str | Path) -> list[XmlPart]:
    """The parts of a MusicXML file as music21 would list them (``score.parts``).

    Raises:
        MusicXMLError: unreadable: empty, not XML, not ``score-partwise``, a corrupt .mxl,
            or a value music21 would reject (a bad pitch step, duration or note type).
    """
    # ElementTree makes a GC-tracked object per element, and each collection the parse
    # triggers scans the whole heap (large once music21 or torch are imported): half the
    # time. The parse makes no reference cycles, so the collector waits until it is done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parts_of(_read_root(Path(path)))
    except MusicXMLError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, ZeroDivisionError) as e:
        raise MusicXMLError(f"{type(e).__name__}: {e}") from None
    finally:
        if collecting:
            gc.enable()


# -- parts to a Score ------------------------------------------------------------------------

def _flat_key(e: _Event) -> tuple:
    return (e.offset, not e.grace, e.order)


def _strip_ties(events: list[_Event]) -> list[_Event]:
    """The notes left after ``Stream.stripTies(matchByPitch=True)``, merged runs lengthened.

    A step-for-step port of music21's loop (``music21/stream/base.py``), over the notes,
    chords and rests of nonzero length in flattened order; ``events`` is not modified.
    """
    seq = sorted((e for e in events if e.ql > 0), key=_flat_key)  # a run's first is copied when merged
    connected: list[int] = []
    delete: set[int] = set()

    def end_match(i: int) -> bool:
        n = seq[i]
        if n.kind != CHORD and n.tie == "stop":
            return True
        if i == 0 or (i - 1) not in connected:
            return False
        last = seq[i - 1]
        if n.kind == NOTE and last.kind == NOTE:
            a, b = last.pitches[0], n.pitches[0]  # Pitch.__eq__
            return (a.octave, a.step, a.accidental) == (b.octave, b.step, b.accidental)
        if n.kind != NOTE:  # two chords (or a chord and a note) of equal size
            if len(last.pitches) != len(n.pitches):
                return False
            return all(p.step == q.step and p.ps == q.ps  # isEnharmonic
                       for p, q in zip(last.pitches, n.pitches, strict=True))
        return False

    for i, n in enumerate(seq):
        if n.tie is None and not connected:
            continue  # end_match(i) is False: nothing to do
        match: bool | None = None
        if n.tie == "start":
            if i == 0 or (i - 1) not in connected:
                connected = [i]
            else:
                connected.append(i)
            match = False
        elif n.tie == "continue":
            if not connected:
                connected.append(i)
            elif end_match(i):
                connected.append(i)
            else:
                connected = [i]
            match = False
        if match is None:
            match = end_match(i)
        if match:
            connected.append(i)
            if len(connected) < 2:
                connected = []
                continue
            dur_sum: Number | int = 0
            for q in connected[1:]:
                dur_sum += seq[q].ql
                delete.add(q)
            first = seq[connected[0]] = _copy(seq[connected[0]])
            first.ql = _op_frac(first.ql + dur_sum)
            first.tie = None
            connected = []
    return [e for i, e in enumerate(seq) if i not in delete] if delete else seq


def track_from_part(part: XmlPart, name: str, steps_per_quarter: int, shift: float = 0.0) -> Track:
    """Notes of one part, as :func:`tunelab.music.music21_io.track_from_part` makes them."""
    starts, ends, pitches = [], [], []
    midi_of: dict[float, int] = {}  # _Pitch.midi depends on ps alone: once per pitch of the part
    floor = math.floor
    for e in _strip_ties(part.events):
        if e.kind == REST:
            continue
        # quantize_quarters, inline
        start = int(floor(float(e.offset + shift) * steps_per_quarter + 0.5))
        end = max(int(floor(float(e.offset + e.ql + shift) * steps_per_quarter + 0.5)), start + 1)
        for p in e.pitches:
            starts.append(start)
            ends.append(end)
            midi = midi_of.get(p.ps)
            if midi is None:
                midi = midi_of[p.ps] = p.midi  # raises here for a pitch without one, as before
            pitches.append(midi)
    velocities = [DEFAULT_VELOCITY] * len(starts)
    if starts and min(starts) >= 0:  # pitches are 0..127 (_Pitch.midi), ends after starts
        return Track(name, notes_from_columns(starts, ends, pitches, velocities))
    return Track(name, tuple(map(Note, starts, ends, pitches, velocities)))


def score_from_parts(parts: Sequence[tuple[XmlPart, str]], piece_id: str, steps_per_quarter: int,
                     source: str = "") -> Score:
    """A Score from chosen, named parts: :func:`~tunelab.music.music21_io.score_from_music21`
    for the fast reader's parts (pickup, meter and tempo from the first)."""
    shift = parts[0][0].pickup
    tracks = tuple(track_from_part(p, name, steps_per_quarter, shift) for p, name in parts)
    first = parts[0][0]
    meters = ((offset, num, den) for offset, _, num, den, _ in
              sorted(first.time_signatures, key=lambda s: (s[0], s[1])))
    marks = sorted(first.tempos, key=lambda t: (t[0], t[1]))
    qpm = marks[0][2] if marks and marks[0][2] is not None else DEFAULT_QPM
    return score_from_quarters(piece_id, tracks, steps_per_quarter, shift, meters, qpm, source)


# -- either reader ---------------------------------------------------------------------------

def read_parts(path: str | Path, reader: str = "fast") -> list[Any]:
    """The parts of a MusicXML file in music21's order: :class:`XmlPart` objects (``fast``)
    or music21 ``Part`` objects (``music21``, through ``converter.parse``).

    Raises:
        MusicXMLError: the file cannot be read; music21's exceptions, of many types, become
            this one with the type's name in front of the message.
    """
    if reader not in READERS:
        raise ValueError(f"reader={reader!r}; choose from {READERS}")
    if reader == "fast":
        return parse_parts(path)
    import music21

    try:
        return list(music21.converter.parse(Path(path)).parts)
    except Exception as e:  # music21 raises many types on malformed MusicXML
        raise MusicXMLError(f"{type(e).__name__}: {e}") from e


def part_names(part: Any) -> tuple[str | None, Any]:
    """(music21's ``partName``, ``id``) of a part from either reader."""
    if isinstance(part, XmlPart):
        return part.name, part.id
    return part.partName, part.id


def score_from_named_parts(parts: Sequence[tuple[Any, str]], piece_id: str, steps_per_quarter: int,
                           source: str = "") -> Score:
    """The Score of chosen, named parts from either reader (all from the same one)."""
    if isinstance(parts[0][0], XmlPart):
        return score_from_parts(parts, piece_id, steps_per_quarter, source)
    from tunelab.music.music21_io import score_from_music21

    return score_from_music21(None, piece_id, steps_per_quarter, list(parts), source)


def read_musicxml(path: str | Path, steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER,
                  piece_id: str | None = None, reader: str = "fast") -> Score:
    """Read every part of a MusicXML file, each named by its part name (else ``part<i>``).

    Args:
        reader: ``"fast"`` (this module, the default) or ``"music21"`` (the reference); both
            give the same Score.

    Raises:
        MusicXMLError: the file cannot be read, or it has no parts.
    """
    path = Path(path)
    parts = read_parts(path, reader)
    if not parts:
        raise MusicXMLError("no parts")
    named = [(p, part_names(p)[0] or f"part{i}") for i, p in enumerate(parts)]
    return score_from_named_parts(named, piece_id or path.stem, steps_per_quarter, str(path))
