"""The fast MusicXML reader gives exactly the Scores music21 gives, and skips the same files.

Every check reads one file with both readers (``bach.read_unit(..., reader=...)`` or
``read_musicxml``) and compares everything: the skip reason or the Score, ``meta`` included.
Three sets: small documents written here, one per behaviour of music21's importer that
decides where a note lands (pickups, ties, chords, voices, grace and cue notes, full-measure
rests, Finale's forwards, meter and tempo marks, multi-staff parts); unreadable files; and
real chorales. A few results are also checked by hand, so that a fault shared by both
readers would not pass.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tunelab.corpora import Parsed, bach
from tunelab.music import musicxml
from tunelab.music.musicxml import MusicXMLError, parse_parts, read_musicxml
from tunelab.music.score import Score

SETTINGS = SimpleNamespace(steps_per_quarter=4)
# music21 warns about the odd documents written here (overfull bars, missing voices)
pytestmark = pytest.mark.filterwarnings("ignore::music21.musicxml.xmlObjects.MusicXMLWarning")
SATB_NAMES = ("Soprano", "Alto", "Tenor", "Bass")

# -- writing MusicXML ----------------------------------------------------------------------


def note(step="C", octave=4, dur=4, typ="quarter", alter=None, tie=None, chord=False, voice=None,
         grace=False, cue=False, accidental=None, staff=None, rest=False, dots=0, extra=""):
    """One <note>; ``dur`` in divisions (4 per quarter unless the measure says otherwise)."""
    parts = ["<note>"]
    if grace:
        parts.append("<grace/>")
    if cue:
        parts.append("<cue/>")
    if chord:
        parts.append("<chord/>")
    if rest:
        parts.append(rest if isinstance(rest, str) else "<rest/>")
    else:
        alter_xml = f"<alter>{alter}</alter>" if alter is not None else ""
        parts.append(f"<pitch><step>{step}</step>{alter_xml}<octave>{octave}</octave></pitch>")
    if dur is not None and not grace:
        parts.append(f"<duration>{dur}</duration>")
    for t in (tie.split("+") if tie else ()):
        parts.append(f'<tie type="{t}"/>')
    if voice is not None:
        parts.append(f"<voice>{voice}</voice>")
    if typ:
        parts.append(f"<type>{typ}</type>")
    parts.append("<dot/>" * dots)
    if accidental:
        parts.append(f"<accidental>{accidental}</accidental>")
    if staff is not None:
        parts.append(f"<staff>{staff}</staff>")
    parts.append(extra)
    parts.append("</note>")
    return "".join(parts)


def attrs(divisions=4, beats=4, beat_type=4, extra=""):
    time = f"<time><beats>{beats}</beats><beat-type>{beat_type}</beat-type></time>" if beats else ""
    div = f"<divisions>{divisions}</divisions>" if divisions else ""
    return f"<attributes>{div}<key><fifths>0</fifths></key>{time}{extra}</attributes>"


def measure(*content, number=1):
    return f'<measure number="{number}">{"".join(content)}</measure>'


def doc(*parts, names=None, software=None, part_list_extra=""):
    """A score-partwise document; ``parts`` are strings of measures, one per part."""
    names = names or (SATB_NAMES if len(parts) == 4 else [f"Part {i + 1}" for i in range(len(parts))])
    ident = (f"<identification><encoding><software>{software}</software></encoding></identification>"
             if software else "")
    plist = "".join(f'<score-part id="P{i + 1}"><part-name>{n}</part-name></score-part>'
                    for i, n in enumerate(names))
    body = "".join(f'<part id="P{i + 1}">{p}</part>' for i, p in enumerate(parts))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1">{ident}'
            f"<part-list>{plist}{part_list_extra}</part-list>{body}</score-partwise>")


def satb(soprano, alto=None, tenor=None, bass=None, **kw):
    """Four parts: the soprano under test and three plain voices (whole notes, 4/4 unless
    the soprano's first measure sets something else, in which case give them too)."""
    filler = alto or measure(attrs(), note("C", 3, 16, "whole"))
    return doc(soprano, filler, tenor or filler, bass or filler, **kw)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def mxl_bytes(xml: str, inner: str = "score.xml", mimetype_first: bool = False,
              container: bool = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        if mimetype_first:
            z.writestr("mimetype", "application/vnd.recordare.musicxml")
        if container:
            z.writestr("META-INF/container.xml",
                       '<?xml version="1.0" encoding="UTF-8"?><container><rootfiles>'
                       f'<rootfile full-path="{inner}"/></rootfiles></container>')
        z.writestr(inner, xml)
    return buf.getvalue()


# -- comparing the readers -----------------------------------------------------------------


def same(a: list[Parsed], b: list[Parsed]) -> None:
    """Equal records, Score meta included (Score's == leaves it out)."""
    assert a == b
    assert [p.score.meta if p.score else None for p in a] == [p.score.meta if p.score else None for p in b]


def both(path: Path) -> list[Parsed]:
    """bach.read_unit with the fast reader, checked against music21's; the fast result."""
    fast = list(bach.read_unit(path.parent, SETTINGS, path.name))
    ref = list(bach.read_unit(path.parent, SETTINGS, path.name, reader="music21"))
    same(fast, ref)
    return fast


def both_all_parts(path: Path) -> Score:
    fast = read_musicxml(path, 4)
    ref = read_musicxml(path, 4, reader="music21")
    assert fast == ref and fast.meta == ref.meta
    return fast


def chorale(tmp_path: Path, text: str, name: str = "c.xml") -> Score:
    [parsed] = both(write(tmp_path, name, text))
    assert parsed.score is not None, parsed.skipped
    return parsed.score


def soprano(score: Score) -> list[tuple[int, int, int]]:
    return [(n.pitch, n.start, n.end) for n in score.track("S").notes]


def test_comparison_can_fail():
    a = Parsed("x", Score("x", ()))
    with pytest.raises(AssertionError):
        same([a], [Parsed("x", Score("x", (), qpm=90.0))])
    with pytest.raises(AssertionError):
        same([a], [Parsed("x", Score("x", (), meta={"pickup_quarters": 1.0}))])


# -- crafted documents ---------------------------------------------------------------------


def test_pickup_bar_and_ties_across_barlines(tmp_path):
    # 3/4 with a one-beat pickup; the G is tied over the bar line and then into a third bar
    s = (measure(attrs(beats=3), note("D", 5, 4)) + measure(note("E", 5, 4), note("F", 5, 4),
         note("G", 5, 4, tie="start"), number=2) + measure(note("G", 5, 12, "half", tie="stop+start", dots=1),
                                                           number=3)
         + measure(note("G", 5, 4, tie="stop"), note("A", 5, 8, "half"), number=4))
    low = measure(attrs(beats=3), note("C", 3, 4)) + measure(note("C", 3, 12, "half", dots=1), number=2)
    score = chorale(tmp_path, satb(s, low, low, low))
    assert score.meta["pickup_quarters"] == 2.0
    assert soprano(score) == [(74, 8, 12), (76, 12, 16), (77, 16, 20), (79, 20, 40), (81, 40, 48)]
    assert score.time_signatures[0].numerator == 3


def test_ties_in_chords(tmp_path):
    # a chord tied over the bar (only the top note marked: music21 merges the whole chord),
    # then a note tied into a chord of one pitch, and a tie without its stop
    s = (measure(attrs(), note("D", 4, 8, "half"), note("C", 4, 8, "half"),
                 note("E", 4, 8, "half", chord=True),
                 note("G", 4, 8, "half", chord=True, tie="start"))
         + measure(note("C", 4, 8, "half"), note("E", 4, 8, "half", chord=True),
                   note("G", 4, 8, "half", chord=True, tie="stop"), note("A", 4, 4, tie="start"),
                   note("A", 4, 4, chord=False), number=2)
         + measure(note("B", 4, 4, tie="start"), note("B", 4, 4), note("B", 4, 4, tie="start"),
                   note("D", 5, 4), number=3))
    score = chorale(tmp_path, satb(s))
    notes = soprano(score)
    assert {(60, 8, 24), (64, 8, 24), (67, 8, 24)} <= set(notes)
    assert (69, 24, 32) in notes  # a tie start then the same pitch without a stop: merged


def test_chord_interrupted_by_a_direction(tmp_path):
    # music21 reads a chord note after a <direction> as a new chord at the later offset
    words = "<direction><direction-type><words>dolce</words></direction-type></direction>"
    s = measure(attrs(), note("C", 4, 4), words, note("E", 4, 4, chord=True), note("G", 4, 8, "half"))
    chorale(tmp_path, satb(s))


def test_backup_forward_two_voices(tmp_path):
    # two voices in one staff; voice 2 starts late (forward) and ties over the bar line
    s = (measure(attrs(), note("E", 5, 8, "half", voice=1), note("D", 5, 8, "half", voice=1),
                 "<backup><duration>16</duration></backup>",
                 "<forward><duration>4</duration><voice>2</voice></forward>",
                 note("C", 5, 4, voice=2), note("B", 4, 8, "half", voice=2, tie="start"))
         + measure(note("C", 5, 16, "whole", voice=1), "<backup><duration>16</duration></backup>",
                   note("B", 4, 4, voice=2, tie="stop"), note("A", 4, 12, "half", voice=2, dots=1), number=2))
    score = chorale(tmp_path, satb(s))
    assert (71, 8, 20) in soprano(score)


def test_voices_named_oddly_and_a_rest_in_a_chord(tmp_path):
    s = measure(attrs(), note("E", 5, 8, "half", voice="10"), note("G", 5, 8, "half", voice=None, chord=True),
                "<backup><duration>8</duration></backup>", note("C", 5, 8, "half", voice="2"),
                note(dur=8, typ="half", rest=True, voice="2"), note("D", 5, 8, "half", voice="2", chord=True))
    chorale(tmp_path, satb(s))


def test_grace_and_cue_notes(tmp_path):
    s = measure(attrs(), note("D", 5, grace=True, typ="eighth"), note("C", 5, 4),
                note("F", 5, grace=True, typ="eighth"), note("A", 5, grace=True, typ="eighth", chord=True),
                note("E", 5, 4), note("G", 5, 8, "half", cue=True))
    score = chorale(tmp_path, satb(s))
    assert soprano(score) == [(72, 0, 4), (76, 4, 8), (79, 8, 16)]  # graces dropped, the cue note kept


def test_time_signature_changes(tmp_path):
    # 4/4, then 3/4, then 6/8 in the middle of a bar (after a backup), then 3+2/8
    s = (measure(attrs(), note("C", 5, 16, "whole"))
         + measure(attrs(divisions=None, beats=3), note("D", 5, 12, "half", dots=1), number=2)
         + measure(note("E", 5, 6, "quarter", dots=1), "<backup><duration>6</duration></backup>",
                   attrs(divisions=None, beats=6, beat_type=8), "<forward><duration>6</duration></forward>",
                   note("F", 5, 6, "quarter", dots=1), number=3)
         + measure('<attributes><time><beats>3+2</beats><beat-type>8</beat-type></time></attributes>',
                   note("G", 5, 10, "half", extra=""), number=4))
    score = chorale(tmp_path, satb(s))
    sigs = [(t.step, t.numerator, t.denominator) for t in score.time_signatures]
    assert sigs[:2] == [(0, 4, 4), (16, 3, 4)]


def test_sound_tempo_and_metronome(tmp_path):
    sound = '<sound tempo="96"/>'
    metro = ("<direction><direction-type><metronome><beat-unit>quarter</beat-unit><beat-unit-dot/>"
             "<per-minute>60</per-minute></metronome></direction-type><sound tempo=\"90\"/></direction>")
    # <sound tempo> first: music21's mark has no number, score_from_music21 keeps 120
    score = chorale(tmp_path, satb(measure(attrs(), sound, metro, note("C", 5, 16, "whole"))), "a.xml")
    assert score.qpm == 120.0
    # a metronome mark first: a dotted quarter at 60 is 90 quarters a minute
    score = chorale(tmp_path, satb(measure(attrs(), metro, sound, note("C", 5, 16, "whole"))), "b.xml")
    assert score.qpm == 90.0
    only_sound = ("<direction><direction-type><words>Adagio</words></direction-type>"
                  '<sound tempo="50"/></direction>')
    chorale(tmp_path, satb(measure(attrs(), only_sound, note("C", 5, 16, "whole"))), "c.xml")


def test_full_measure_rests(tmp_path):
    # a whole rest in 3/4 lasts 3 beats; measure="yes" forces the bar length too
    s = (measure(attrs(beats=3), note(rest=True, dur=16, typ="whole"))
         + measure(note(rest='<rest measure="yes"/>', dur=8, typ=None), number=2)
         + measure(note("C", 5, 12, "half", dots=1), number=3))
    low = measure(attrs(beats=3), note("C", 3, 12, "half", dots=1))
    score = chorale(tmp_path, satb(s, low, low, low))
    assert soprano(score) == [(72, 24, 36)]


def test_empty_overfull_and_short_bars(tmp_path):
    s = (measure(attrs(divisions=60), note("C", 5, 240, "whole"))
         + measure(number=2)  # empty: music21 fills it with a bar of rest
         + measure(note("D", 5, 245, "whole"), number=3)  # overfull by 1/12: a round amount, kept
         + measure(note("E", 5, 252, "whole"), number=4)  # overfull by 1/5: the next bar starts on time
         + measure(note("F", 5, 120, "half"), number=5)  # short (not a pickup)
         + measure(note("G", 5, 120, "half"), number=6)
         + measure(note("A", 5, 240, "whole"), number=7))
    score = chorale(tmp_path, satb(s))
    # bar 4 starts 1/12 late; bar 5 a 4/4 bar after it (64.33 steps), not 4.2 quarters (65.13)
    assert [n.start for n in score.track("S").notes] == [0, 32, 48, 64, 72, 80]


def test_triplets(tmp_path):
    s = measure(attrs(divisions=3), *(note(st, 5, 1, "eighth", extra="<time-modification><actual-notes>3"
                                             "</actual-notes><normal-notes>2</normal-notes></time-modification>")
                                      for st in "CDEFGA"), note("B", 5, 6, "half"))
    chorale(tmp_path, satb(s))


def test_accidentals(tmp_path):
    # an <accidental> without <alter> counts (music21); ties by same spelling only
    s = measure(attrs(), note("F", 5, 4, accidental="sharp"), note("F", 5, 4, alter=1, tie="start"),
                note("F", 5, 4, alter=1, accidental="sharp"), note("B", 4, 4, alter=-1),
                number=1) + measure(note("C", 5, 4, alter=0, tie="start"), note("C", 5, 4),
                                    note("E", 5, 4, alter="-1", tie="start"), note("D", 5, 4, alter=1),
                                    number=2)
    score = chorale(tmp_path, satb(s))
    assert soprano(score)[0] == (78, 0, 4)


def test_finale_forwards_are_rests(tmp_path):
    # Finale files: a <forward> is a hidden rest (its bar is then full), a trailing one dropped;
    # a tie stop after a rest still merges with the start (music21's stripTies: 2 quarters)
    s = (measure(attrs(), "<forward><duration>4</duration></forward>", note("C", 5, 4, tie="start"),
                 "<forward><duration>4</duration></forward>", note("C", 5, 4, tie="stop"))
         + measure(note("D", 5, 8, "half"), "<forward><duration>8</duration></forward>", number=2))
    score = chorale(tmp_path, satb(s, software="Finale 2011 for Windows"), "f.xml")
    plain = chorale(tmp_path, satb(s, software="MuseScore 4"), "m.xml")
    assert soprano(score) == soprano(plain) == [(72, 4, 12), (74, 16, 24)]


def test_pickup_without_time_signature_and_with_a_late_one(tmp_path):
    chorale(tmp_path, satb(measure(attrs(beats=None), note("C", 5, 4)) + measure(note("D", 5, 16, "whole"),
                                                                                   number=2)), "a.xml")
    late = measure(attrs(beats=None), note("C", 5, 4), "<attributes><time><beats>3</beats>"
                   "<beat-type>4</beat-type></time></attributes>", note("D", 5, 4))
    chorale(tmp_path, satb(late + measure(note("E", 5, 12, "half", dots=1), number=2)), "b.xml")


def test_multi_staff_part_counts_one_part_per_staff(tmp_path):
    staves = ('<attributes><divisions>4</divisions><time><beats>4</beats><beat-type>4</beat-type></time>'
              '<staves>2</staves><clef number="1"><sign>G</sign><line>2</line></clef>'
              '<clef number="2"><sign>F</sign><line>4</line></clef></attributes>')
    piano = measure(staves, note("E", 5, 16, "whole", voice=1, staff=1),
                    "<backup><duration>16</duration></backup>",
                    note("C", 3, 16, "whole", voice=2, staff=2))
    # a piano and two voices: four parts as music21 counts them, so read as S, A, T, B by order
    two = measure(attrs(), note("G", 4, 16, "whole"))
    score = chorale(tmp_path, doc(piano, two, two, names=("Piano", "Violin", "Viola")), "p.xml")
    assert [len(t.notes) for t in score.tracks] == [1, 1, 1, 1]
    [parsed] = both(write(tmp_path, "q.xml", doc(piano, names=("Piano",))))
    assert parsed.skipped == "not a four-part chorale (2 parts)"
    assert [p.id for p in parse_parts(tmp_path / "q.xml")] == ["P1-Staff1", "P1-Staff2"]


def test_parts_found_by_name_and_doublings_left_out(tmp_path):
    m = measure(attrs(), note("C", 4, 16, "whole"))
    names = ("Horn", "Bass", "Alto", "Tenor", "Soprano")
    score = chorale(tmp_path, doc(m, m, m, m, m, names=names), "n.xml")
    assert [t.name for t in score.tracks] == ["S", "A", "T", "B"]
    # no part names: the score-instrument's name is music21's part id
    inst = ('<score-part id="P1"><part-name></part-name><score-instrument id="P1-I1"><instrument-name>'
            "Soprano voice</instrument-name></score-instrument></score-part>")
    text = doc(m, m, m, m, m, names=("x", "Alto", "Tenor", "Bass", "Horn")).replace(
        '<score-part id="P1"><part-name>x</part-name></score-part>', inst)
    score = chorale(tmp_path, text, "i.xml")
    assert [t.name for t in score.tracks] == ["S", "A", "T", "B"]


def test_read_musicxml_names_every_part(tmp_path):
    m = measure(attrs(beats=2), note("C", 4, 4), note("D", 4, 4))
    score = both_all_parts(write(tmp_path, "two.xml", doc(m, m, names=("Flute", ""))))
    assert [t.name for t in score.tracks] == ["Flute", "part1"]


def test_mxl_archives(tmp_path):
    text = satb(measure(attrs(), note("C", 5, 16, "whole")))
    for name, data in (("a.mxl", mxl_bytes(text)),
                       ("b.mxl", mxl_bytes(text, "x.musicxml", mimetype_first=True)),
                       ("c.mxl", mxl_bytes(text, container=False))):
        (tmp_path / name).write_bytes(data)
        assert both(tmp_path / name)[0].score is not None
    # a .mxl that is plain XML: music21 reads it as XML, so does the fast reader
    (tmp_path / "plain.mxl").write_text(text)
    assert both(tmp_path / "plain.mxl")[0].score is not None


def random_part(r: random.Random, bars: int, divisions: int, staves: bool) -> str:
    """Bars of random content: meter changes, short, overfull and empty bars, rests (some
    measure="yes"), forwards, two voices, grace and cue notes, chords with partial ties,
    every tie combination, accidentals, tempo marks and offset directions."""
    out, bar = [], 0
    for i in range(bars):
        content = []
        if i == 0 or r.random() < 0.15:
            beats, beat_type = r.choice([(4, 4), (3, 4), (2, 4), (6, 8), (3, 8), (2, 2)])
            extra = ('<staves>2</staves><clef number="1"><sign>G</sign><line>2</line></clef>'
                     '<clef number="2"><sign>F</sign><line>4</line></clef>') if staves and i == 0 else ""
            content.append(attrs(divisions if i == 0 else None, beats, beat_type, extra))
            bar = beats * 4 * divisions // beat_type
        x = r.random()
        length = (r.randint(1, bar) if (i == 0 and x < 0.4) or 0.15 <= x < 0.25 else 0 if x < 0.08
                  else bar + r.choice([1, divisions // 2, divisions]) if x < 0.15 else bar)
        voices = 2 if r.random() < 0.25 else 1
        pos = 0
        for v in range(voices):
            if v:
                content.append(f"<backup><duration>{pos}</duration></backup>")
            pos = 0
            while pos < length:
                d = min(length - pos, r.choice([divisions, divisions, divisions // 2, 2 * divisions,
                                                3 * divisions // 2, 1]))
                voice = (v + 1 if r.random() < 0.85 else None) if voices > 1 or r.random() < 0.3 else None
                staff = r.choice([None, 1, 2]) if staves else None
                kind = r.random()
                if kind < 0.08:
                    content.append(f"<forward><duration>{d}</duration>"
                                   f"{f'<voice>{voice}</voice>' if voice else ''}</forward>")
                elif kind < 0.2:
                    content.append(note(dur=d, typ=r.choice([None, "quarter", "whole"]), voice=voice,
                                        rest=r.choice([True, '<rest measure="yes"/>'])))
                else:
                    if r.random() < 0.07:
                        content.append(note(r.choice("CDEFGAB"), 5, grace=True, typ="eighth", voice=voice))
                    content.append(note(
                        r.choice("CDE") if r.random() < 0.6 else r.choice("CDEFGAB"), 4 + r.randint(0, 1), d,
                        "quarter", alter=r.choice([None, None, None, 1, -1, 0]), voice=voice, staff=staff,
                        tie=r.choice([None, None, None, "start", "stop", "stop+start", "continue",
                                      "start+start"]),
                        accidental=r.choice([None, None, None, None, "sharp", "flat", "natural"]),
                        cue=r.random() < 0.03))
                    for _ in range(r.choice([0, 0, 0, 1, 2])):
                        content.append(note(r.choice("CDEFGAB"), 4, d, "quarter", chord=True,
                                            voice=voice if r.random() < 0.7 else None,
                                            tie=r.choice([None, None, "start", "stop"])))
                if r.random() < 0.05:
                    content.append(r.choice([
                        '<sound tempo="80"/>',
                        "<direction><direction-type><metronome><beat-unit>quarter</beat-unit><per-minute>72"
                        "</per-minute></metronome></direction-type></direction>",
                        f"<direction><direction-type><words>p</words></direction-type>"
                        f"<offset>{r.randint(-4, 8)}</offset></direction>",
                        "<attributes><time><beats>3</beats><beat-type>4</beat-type></time></attributes>"]))
                pos += d
        out.append(measure(*content, number=i + 1))
    return "".join(out)


@pytest.mark.parametrize("seed", range(24))
def test_random_documents(tmp_path, seed):
    r = random.Random(seed)
    divisions = r.choice([2, 4, 6, 12])
    parts = [random_part(r, r.randint(2, 6), divisions, r.random() < 0.1) for _ in range(4)]
    text = doc(*parts, software="Finale 2014" if r.random() < 0.3 else None)
    both(write(tmp_path, f"r{seed}.xml", text))


# -- unreadable files ------------------------------------------------------------------------

BAD_FILES = {
    "empty.xml": (b"", "empty file"),
    "empty.mxl": (b"", "empty file"),
    "corrupt.mxl": (mxl_bytes("<score-partwise/>")[:40], "corrupt .mxl"),
    "garbage.mxl": (b"\x00\x01 not a zip", "not a zip archive"),
    "html.xml": (b"<html><body>hello</body></html>", "root element <html>, not <score-partwise>"),
    "broken.xml": (b"<score-partwise><part-list>", "not well-formed XML"),
    "timewise.xml": (b"<score-timewise/>", "not <score-partwise>"),
    "bad_step.xml": (satb(measure(attrs(), note("H", 5, 16, "whole"))).encode(), "step"),
    "bad_type.xml": (satb(measure(attrs(), note("C", 5, 16, "hemiola"))).encode(), "note type"),
    "bad_duration.xml": (satb(measure(attrs(), note("C", 5, "x", "whole"))).encode(), "duration"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_unreadable_files_are_skipped_by_both(tmp_path, name):
    data, reason = BAD_FILES[name]
    (tmp_path / name).write_bytes(data)
    [fast] = bach.read_unit(tmp_path, SETTINGS, name)
    [ref] = bach.read_unit(tmp_path, SETTINGS, name, reader="music21")
    assert fast.score is None and ref.score is None
    assert fast.skipped.startswith("unparseable MusicXML: ")
    assert ref.skipped.startswith("unparseable MusicXML: ")
    assert reason in fast.skipped and "\n" not in fast.skipped
    with pytest.raises(MusicXMLError, match=reason):
        parse_parts(tmp_path / name)


def test_readers_are_named():
    with pytest.raises(ValueError, match="reader"):
        musicxml.read_parts("x.xml", reader="lxml")


# -- real chorales -------------------------------------------------------------------------

# pickups (bwv1.6, bwv10.7...), meter changes (bwv171.6, bwv27.6, bwv304, bwv362, bwv41.6),
# two voices with backups (bwv248.23-2), chords (bwv248.9-1), grace notes (bwv299, bwv315),
# Finale forwards (bwv111.6, bwv12.7), a mimetype entry and multi-measure rests (bwv113.8),
# full-measure rests (bwv19.7), a multi-staff keyboard piece (bwv846: 2 parts, skipped)
CHORALES = ("bwv1.6.mxl", "bwv10.7.mxl", "bwv171.6.mxl", "bwv27.6.mxl", "bwv304.mxl", "bwv362.mxl",
            "bwv41.6.mxl", "bwv248.23-2.mxl", "bwv248.9-1.mxl", "bwv299.mxl", "bwv315.mxl", "bwv111.6.mxl",
            "bwv12.7.mxl", "bwv113.8.mxl", "bwv19.7.mxl", "bwv846.mxl")


@pytest.mark.parametrize("name", CHORALES)
def test_real_chorales(name):
    [path] = [p for p in bach._source_files() if p.name == name]
    [parsed] = both(path)
    if name == "bwv846.mxl":
        assert parsed.skipped == "not a four-part chorale (2 parts)"
    else:
        assert parsed.score is not None and parsed.score.num_notes > 100


def test_real_chorale_by_hand():
    [path] = [p for p in bach._source_files() if p.name == "bwv1.6.mxl"]
    [parsed] = bach.read_unit(path.parent, SETTINGS, path.name)
    # a one-beat pickup in 4/4, padded so the first downbeat is step 16
    assert parsed.score.meta["pickup_quarters"] == 3.0
    assert [n.start for n in parsed.score.track("S").notes[:2]] == [12, 16]
