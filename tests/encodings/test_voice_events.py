"""Per-voice melody events (melody -> accompaniment): held vs re-struck notes, round trips."""

import numpy as np
import pytest

from tunelab.encodings import (
    MelodyOneHotEncoding,
    VoiceEventsEncoding,
    score_to_voice_events,
    voice_events_to_score,
)
from tunelab.music.score import Note, Score, Track

NE, OFF = -2, -1  # NO_EVENT, NOTE_OFF
VOICES = ("mel", "bass")


def _score(spq=4, **tracks):
    return Score("t", tuple(Track(v, tuple(n)) for v, n in tracks.items()), steps_per_quarter=spq)


# The melody holds C5 for two steps, re-strikes it, rests a step, then plays D5; the bass
# holds C3 and stops two steps before the melody does.
MEL = [Note(0, 2, 72), Note(2, 3, 72), Note(4, 6, 74)]
BASS = [Note(0, 4, 48)]
GRID = [[72, 48], [NE, NE], [72, NE], [OFF, NE], [74, OFF], [NE, NE]]


def test_held_repeated_rest_and_padding():
    grid = score_to_voice_events(_score(mel=MEL, bass=BASS), VOICES)
    assert grid.dtype == np.int64
    assert grid.tolist() == GRID


def test_highest_of_one_onset_kept_and_later_onset_cuts():
    # 60 and 67 start together (67 kept); 64 starts inside 67 and cuts it, so the voice
    # ends when 64 does although 67 was written to step 8; the grid ends with the bass.
    chord = [Note(0, 8, 60), Note(0, 8, 67), Note(4, 6, 64)]
    grid = score_to_voice_events(_score(mel=chord, bass=[Note(0, 7, 36)]), VOICES)
    assert grid[:, 0].tolist() == [67, NE, NE, NE, 64, NE, OFF]
    assert grid[:, 1].tolist() == [36, NE, NE, NE, NE, NE, NE]
    # The voice sounds as the melody extractor hears it: 67 cut at 4, then 64.
    score = voice_events_to_score(grid, VOICES)
    assert score.track("mel").notes == (Note(0, 4, 67), Note(4, 6, 64))


def test_to_score_and_back():
    score = voice_events_to_score(np.array(GRID), VOICES, score_id="x", qpm=90.0)
    assert [t.name for t in score.tracks] == list(VOICES)
    assert score.track("mel").notes == tuple(MEL)  # velocity 80, the project default
    assert score.track("bass").notes == tuple(BASS)
    assert (score.id, score.qpm, score.steps_per_quarter) == ("x", 90.0, 4)
    np.testing.assert_array_equal(score_to_voice_events(score, VOICES), GRID)
    # A final row where nothing sounds is not canonical: the round trip drops it.
    tail = np.array([[60, NE], [OFF, NE]])
    np.testing.assert_array_equal(score_to_voice_events(voice_events_to_score(tail, VOICES), VOICES),
                                  [[60, NE]])


def test_encode_decode_exact():
    enc = VoiceEventsEncoding(VOICES)
    assert enc.num_voices == 2
    assert enc.vocab == MelodyOneHotEncoding(0, 128).vocab
    assert enc.input_size == enc.num_classes == len(enc.vocab) == 130
    labels = enc.encode(np.array(GRID))
    # Row-major, melody first: NO_EVENT 0, NOTE_OFF 1, onset of p is 2 + p.
    assert labels.tolist()[:8] == [74, 50, 0, 0, 74, 0, 1, 0]
    np.testing.assert_array_equal(enc.decode(labels), GRID)
    inputs = enc.inputs(np.array(GRID))
    assert inputs.shape == (12, 130) and inputs.argmax(1).tolist() == labels.tolist()
    np.testing.assert_array_equal(enc.inputs(labels), inputs)
    assert enc.decode(enc.encode(np.zeros((0, 2), int))).shape == (0, 2)


def test_decode_drops_incomplete_row():
    enc = VoiceEventsEncoding(VOICES)
    assert enc.decode([74, 50, 0]).tolist() == [[72, 48]]
    assert enc.decode([74]).shape == (0, 2)


def test_errors():
    enc = VoiceEventsEncoding(VOICES)
    with pytest.raises(ValueError, match="steps per quarter"):
        score_to_voice_events(_score(spq=8, mel=MEL, bass=BASS), VOICES)
    with pytest.raises(KeyError):
        score_to_voice_events(_score(mel=MEL), VOICES)
    with pytest.raises(ValueError):
        enc.encode(np.array([[72, 48, 60]]))
    with pytest.raises(ValueError):
        enc.encode(np.array([[72, -3]]))
    with pytest.raises(ValueError):
        enc.decode([130, 0])
    with pytest.raises(ValueError):
        voice_events_to_score(np.array([[128, NE]]), VOICES)


def test_random_scores_round_trip():
    rng = np.random.default_rng(0)
    enc = VoiceEventsEncoding(VOICES)
    for _ in range(50):
        tracks = {}
        for v in VOICES:  # overlapping, unison and same-onset notes on purpose
            starts = rng.integers(0, 24, size=rng.integers(0, 8))
            tracks[v] = [Note(int(s), int(s + rng.integers(1, 6)), int(rng.integers(58, 62)))
                         for s in starts]
        grid = score_to_voice_events(_score(**tracks), VOICES)
        np.testing.assert_array_equal(enc.decode(enc.encode(grid)), grid)
        np.testing.assert_array_equal(score_to_voice_events(voice_events_to_score(grid, VOICES), VOICES),
                                      grid)


def test_voices_come_from_the_corpus_config():
    from tunelab.config import load_config
    from tunelab.encodings.registry import accompaniment_voices, build_encoding, encoding_for

    assert build_encoding("voice_events").voices == ("S", "A", "T", "B")
    assert encoding_for(load_config(["corpus=jazz"]), "voice_events").voices == ("solo", "bass")
    with pytest.raises(ValueError, match=r"corpus\.children\.accompaniment"):
        accompaniment_voices(load_config(["corpus=children"]))
