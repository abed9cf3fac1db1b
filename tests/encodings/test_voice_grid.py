"""Four-voice 16th-note grid for JSB chorales."""

import numpy as np
import pytest

from tunelab.encodings import VoiceGridEncoding, grid_to_score, score_to_grid
from tunelab.music.score import Note, Score, Track

# A I-V-I cadence in C, quarter-note chords; the alto repeats G4 (re-struck) in chord 3
# and the tenor rests in the last quarter.
SATB = {
    "S": [Note(0, 4, 72), Note(4, 8, 71), Note(8, 12, 72)],
    "A": [Note(0, 4, 67), Note(4, 8, 67), Note(8, 12, 67)],
    "T": [Note(0, 4, 64), Note(4, 8, 62)],
    "B": [Note(0, 4, 48), Note(4, 8, 55), Note(8, 12, 48)],
}


def _score(spq=4):
    return Score("bwv", tuple(Track(v, tuple(n)) for v, n in SATB.items()), steps_per_quarter=spq)


def test_size():
    enc = VoiceGridEncoding()
    assert enc.num_classes == len(enc.vocab) == 129
    assert enc.vocab.name(60) == "PITCH_60" and enc.vocab.name(128) == "REST"


def test_score_to_grid_samples_every_step():
    grid = score_to_grid(_score())
    assert grid.shape == (12, 4)
    assert grid[0].tolist() == [72, 67, 64, 48]
    assert grid[7].tolist() == [71, 67, 62, 55]
    assert grid[11].tolist() == [72, 67, -1, 48]
    assert score_to_grid(_score(), num_steps=16)[12:].tolist() == [[-1] * 4] * 4


def test_grid_to_score_merges_held_pitches():
    score = grid_to_score(score_to_grid(_score()), score_id="bwv")
    # The alto's three G4 quarters become one dotted half: JSB has no ties.
    assert score.track("A").notes == (Note(0, 12, 67),)
    assert score.track("S").notes == tuple(SATB["S"])
    assert score.track("T").notes == tuple(SATB["T"])
    assert [t.name for t in score.tracks] == ["S", "A", "T", "B"]
    assert score.steps_per_quarter == 4
    # grid -> score -> grid is exact.
    grid = score_to_grid(_score())
    np.testing.assert_array_equal(score_to_grid(grid_to_score(grid)), grid)


def test_encode_in_grid_order_and_round_trip():
    enc = VoiceGridEncoding()
    grid = score_to_grid(_score())
    labels = enc.encode(grid)
    assert labels.shape == (48,)
    # t0: S A T B, t1: S A T B, ... ; the silent tenor at the end is REST (128).
    assert labels[:8].tolist() == [72, 67, 64, 48, 72, 67, 64, 48]
    assert labels[-4:].tolist() == [72, 67, 128, 48]
    np.testing.assert_array_equal(enc.decode(labels, voices=4), grid)
    assert enc.inputs(grid).shape == (48, 129) == (len(labels), enc.input_size)
    np.testing.assert_array_equal(enc.decode(enc.encode(np.zeros((0, 4), int))), np.zeros((0, 4)))


def test_errors():
    enc = VoiceGridEncoding()
    with pytest.raises(ValueError, match="steps per quarter"):
        score_to_grid(_score(spq=8))
    with pytest.raises(ValueError, match="whole rows"):
        enc.decode([60, 60, 60])
    with pytest.raises(ValueError):
        enc.encode(np.array([[60, 128, 60, 60]]))
    with pytest.raises(KeyError):
        score_to_grid(_score(), voices=("S", "A", "T", "X"))


def test_augmenter_transposes_every_voice_and_keeps_rests():
    enc = VoiceGridEncoding()
    tokens = enc.encode(score_to_grid(_score()))
    apply = enc.augmenter(transpose=3)
    rng = np.random.default_rng(0)
    shifts = set()
    for _ in range(50):
        out = apply(tokens, rng)
        rest = tokens == 128
        np.testing.assert_array_equal(out[rest], 128)  # silence never moves
        shift = set((out[~rest] - tokens[~rest]).tolist())
        assert len(shift) == 1  # one shift for the whole piece, every voice
        shifts |= shift
    assert shifts == {-3, -2, -1, 0, 1, 2, 3}
    # a piece the shift would push past 127 keeps its pitches
    high = np.array([127, 128, 120, 100])
    for _ in range(20):
        out = apply(high, rng)
        assert out.tolist() == high.tolist() or out[0] < 127
    assert enc.augmenter(0)(tokens, rng).tolist() == tokens.tolist()
