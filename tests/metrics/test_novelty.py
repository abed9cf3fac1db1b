"""The memorization check: skyline melody events, the suffix-automaton copy index against
brute force, and the copied share on hand-made copies."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from conftest import score_of
from tunelab.metrics.novelty import HOLD, REST, START, CopyIndex, is_onset, melody_events, novelty
from tunelab.music.score import Note, TimeSignature, Track

H, R = HOLD, REST

# Six bars of 4/4 on the 16th grid (16 steps a bar), each bar with its own rhythm.
TRAINING_NOTES = [
    (60, 0, 8), (62, 8, 16),
    (64, 16, 20), (65, 20, 22), (67, 22, 24), (69, 24, 28), (67, 28, 32),
    (65, 32, 34), (64, 34, 36), (62, 36, 40), (60, 40, 44), (59, 44, 48),
    (60, 48, 51), (62, 51, 52), (64, 52, 56), (67, 58, 64),  # a rest at 56..58
    (72, 64, 66), (71, 66, 68), (69, 68, 72), (67, 72, 80),
    (65, 80, 84), (64, 84, 88), (62, 88, 92), (60, 92, 96),
]


def excerpt(notes, start, end, transpose=0, at=0):
    """The notes inside [start, end), moved to step ``at`` and transposed."""
    return [(p + transpose, s - start + at, e - start + at) for p, s, e in notes if start <= s and e <= end]


def test_melody_events_by_hand():
    assert melody_events(score_of([(60, 0, 2), (62, 2, 3), (67, 4, 8)])) == [
        START, H, 2, R, 5, H, H, H]
    assert melody_events(score_of([(60, 2, 4)])) == [R, R, START, H]  # leading silence is kept
    assert melody_events(score_of([])) == []


def test_skyline_takes_the_top_note():
    # melody above a held bass: when the melody stops, the bass shows through as an onset
    melody_and_bass = score_of([(72, 0, 4)], [(48, 0, 8)])
    assert melody_events(melody_and_bass) == [START, H, H, H, -24, H, H, H]
    # a unison re-attack in another voice does not interrupt the note already sounding
    assert melody_events(score_of([(60, 0, 8)], [(60, 2, 4)])) == [START] + [H] * 7
    # repeated notes are separate onsets of interval 0
    assert melody_events(score_of([(60, 0, 2), (60, 2, 4)])) == [START, H, 0, H]


def test_melody_events_ignore_drums_and_transposition():
    melody = score_of(TRAINING_NOTES)
    drums = Track("drums", tuple(Note(s, s + 1, 80) for s in range(0, 100, 3)), is_drum=True)
    assert melody_events(melody.with_tracks([*melody.tracks, drums])) == melody_events(melody)
    assert melody_events(score_of([(p + 7, s, e) for p, s, e in TRAINING_NOTES])) == melody_events(melody)
    assert melody_events(score_of([(36, 0, 4)], drums=True)) == []


def test_a_transposed_three_bar_excerpt_is_a_copy():
    index = CopyIndex([score_of(TRAINING_NOTES)])
    sample = score_of(excerpt(TRAINING_NOTES, 16, 64, transpose=5))  # bars 2-4, up a fourth
    # 48 steps, less the first onset: its interval comes from a note the sample lacks
    assert index.longest_copy(melody_events(sample)) == 47
    result = novelty([sample], index)
    assert result["copied_share"] == 1.0
    assert result["longest_copy_bars_max"] == result["longest_copy_bars_mean"] == pytest.approx(47 / 16)


def one_bar_sample():
    # bar 3 down a minor third, then a bar of 16ths leaping by 11 and 14 semitones, which
    # the training piece never does
    leaps = [(70 if i % 2 == 0 else 59, 16 + i, 17 + i) for i in range(16)]
    return score_of(excerpt(TRAINING_NOTES, 32, 48, transpose=-3) + leaps)


def test_one_shared_bar_is_not_a_copy():
    index = CopyIndex([score_of(TRAINING_NOTES)])
    # the copied bar's 16 steps less its first onset; the leaps match nothing with 2 onsets
    assert index.longest_copy(melody_events(one_bar_sample())) == 15
    assert novelty([one_bar_sample()], index)["copied_share"] == 0.0


def test_holds_and_rests_alone_are_no_copy():
    index = CopyIndex.from_events([[START] + [H] * 40 + [R] * 40 + [2, H, H]])
    assert index.longest_copy([R] * 32) == 0
    assert index.longest_copy([H] * 32) == 0
    assert index.longest_copy([5] + [H] * 39) == 0  # one onset only
    assert index.longest_copy([H] * 32, min_onsets=0) == 32


def test_a_match_must_hold_two_onsets():
    # The longest raw match (ten holds and the 1, from the first piece) has one onset;
    # the longest with two is "3 hold 3" from the second.
    index = CopyIndex.from_events([[START] + [H] * 10 + [1], [START, 3, H, 3]])
    sample = [H] * 10 + [1, 3, H, 3]
    assert index.longest_copy(sample) == 3
    assert index.longest_copy(sample, min_onsets=1) == 11
    assert index.longest_copy(sample, min_onsets=0) == 11


def test_matches_never_span_two_training_pieces():
    index = CopyIndex.from_events([[START, 1, H, 2, H, 3], [4, H, 5, H, 6]])
    # the end of the first piece then the start of the second: 8 steps if they were joined
    assert index.longest_copy([1, H, 2, H, 3, 4, H, 5]) == 5
    assert index.longest_copy([2, H, 3, 4, H, 5, H, 6]) == 5


def test_novelty_summary():
    training = [score_of(TRAINING_NOTES), score_of([(60, 0, 4), (64, 4, 8)])]
    copy = score_of(excerpt(TRAINING_NOTES, 16, 64, transpose=5))
    copy_in_3_4 = replace(copy, time_signatures=(TimeSignature(0, 3, 4),))  # 12-step bars
    silent = score_of([(36, 0, 4)], drums=True)  # no melody at all
    samples = [copy, one_bar_sample(), silent, copy_in_3_4]
    result = novelty(samples, training)
    assert result == {
        "copied_share": pytest.approx(2 / 4),
        "longest_copy_bars_mean": pytest.approx((47 / 16 + 15 / 16 + 0 + 47 / 12) / 4),
        "longest_copy_bars_max": pytest.approx(47 / 12),
        "bars": 2, "samples": 4, "training_pieces": 2,
    }
    assert novelty(samples, CopyIndex(training)) == result  # a prebuilt index, same answer
    # asking for 3 bars: 47 steps are 2.94 bars of 4/4 but 3.9 bars of 3/4
    assert novelty(samples, training, bars=3)["copied_share"] == pytest.approx(1 / 4)


def test_novelty_refuses_bad_input():
    training = [score_of(TRAINING_NOTES)]
    with pytest.raises(ValueError, match="at least one sample"):
        novelty([], training)
    with pytest.raises(ValueError, match="at least one training piece"):
        novelty([score_of(TRAINING_NOTES)], [])
    with pytest.raises(ValueError, match="steps per quarter"):
        novelty([replace(score_of(TRAINING_NOTES), steps_per_quarter=8)], training)


def test_index_size():
    index = CopyIndex([score_of(TRAINING_NOTES), score_of([(60, 2, 4)])])
    assert index.pieces == 2 and index.steps == 96 + 4
    assert index.steps_per_quarter == 4


def brute_force_longest_copy(sample, pieces, min_onsets):
    """O(n m) longest common suffixes per piece, then every common substring ending at
    each matching pair of positions checked for its onsets directly."""
    best = 0
    for piece in pieces:
        previous = [0] * (len(piece) + 1)
        for i in range(1, len(sample) + 1):
            current = [0] * (len(piece) + 1)
            for j in range(1, len(piece) + 1):
                if sample[i - 1] == piece[j - 1]:
                    current[j] = previous[j - 1] + 1
                    for k in range(current[j], best, -1):  # sample[i-k:i] occurs in piece
                        if sum(map(is_onset, sample[i - k:i])) >= min_onsets:
                            best = k
                            break
            previous = current
    return best


def random_events(rng: random.Random, n: int) -> list:
    return rng.choices([H, R, -2, -1, 0, 1, 2, START], weights=[40, 10, 8, 10, 8, 10, 8, 2], k=n)


@pytest.mark.parametrize("min_onsets", [0, 1, 2, 3])
def test_longest_copy_matches_brute_force(min_onsets):
    rng = random.Random(1234)
    for case in range(50):
        pieces = [random_events(rng, rng.randint(1, 40)) for _ in range(rng.randint(1, 3))]
        # a sample of random stretches and stretches cut from the pieces, some of them
        # running from one piece's end into the next piece's start
        sample: list = []
        joined = [e for p in pieces for e in p]
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.5:
                sample += random_events(rng, rng.randint(1, 10))
            else:
                a = rng.randrange(len(joined))
                sample += joined[a:a + rng.randint(1, 15)]
        expected = brute_force_longest_copy(sample, pieces, min_onsets)
        got = CopyIndex.from_events(pieces).longest_copy(sample, min_onsets=min_onsets)
        assert got == expected, (case, pieces, sample)
