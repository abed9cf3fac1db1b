"""mgeval's relative metrics on hand-computed features, distances and KDE comparisons."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import numpy as np
import pytest

from conftest import score_of
from tunelab.metrics.relative import (
    DEGENERATE_BANDWIDTH,
    FEATURES,
    inter_set_distances,
    intra_set_distances,
    kl_divergence,
    overlap_area,
    relative_metrics,
)
from tunelab.music.score import Note, Track

SCALE = [60, 62, 64, 65, 67, 69, 71, 72]  # C major, C4..C5


def scale_score():
    return score_of([(p, 4 * i, 4 * i + 4) for i, p in enumerate(SCALE)])  # one quarter note each


def features(score):
    return {name: f(score) for name, f in FEATURES.items()}


def test_c_major_scale_features():
    f = features(scale_score())
    assert f["total_used_pitch"].tolist() == [8]
    assert f["total_used_note"].tolist() == [8]
    assert f["pitch_range"].tolist() == [12]
    # intervals 2 2 1 2 2 2 1: an octave over 7 steps
    assert f["avg_pitch_shift"][0] == pytest.approx(12 / 7)
    assert f["avg_IOI"][0] == pytest.approx(1.0)  # one beat
    # C sounds twice as long as each other scale degree (C4 and C5), nothing off the scale
    expected = np.zeros(12)
    expected[[2, 4, 5, 7, 9, 11]] = 1 / 8
    expected[0] = 2 / 8
    np.testing.assert_allclose(f["total_pitch_class_histogram"], expected)
    transitions = np.zeros((12, 12))
    for a, b in zip(SCALE, SCALE[1:], strict=False):
        transitions[a % 12, b % 12] = 1 / 7
    np.testing.assert_allclose(f["pitch_class_transition_matrix"], transitions)
    quarter = np.eye(12)[2]  # class order: full, half, quarter, ...
    np.testing.assert_array_equal(f["note_length_hist"], quarter)
    np.testing.assert_array_equal(f["note_length_transition_matrix"], np.outer(quarter, quarter))


@pytest.mark.parametrize(("steps", "spq", "cls"), [
    (16, 4, 0), (40, 4, 0),  # whole note; anything longer is nearest to it
    (8, 4, 1), (4, 4, 2), (2, 4, 3), (1, 4, 4),
    (12, 4, 5), (6, 4, 6), (3, 4, 7), (3, 8, 8),  # dotted; a dotted 16th needs 8 steps per quarter
    (4, 3, 9), (2, 3, 10), (1, 3, 11),  # triplets on a 3-per-quarter grid
    (7, 4, 1),  # 1.75 quarters: equally far from half and dotted quarter; the first class wins
])
def test_note_length_classes(steps, spq, cls):
    score = replace(score_of([(60, 0, steps)]), steps_per_quarter=spq)
    np.testing.assert_array_equal(FEATURES["note_length_hist"](score), np.eye(12)[cls])


def test_simultaneous_notes_are_read_low_to_high():
    # a C-E-G chord, then D: the melody line is C E G D
    score = score_of([(67, 0, 4), (60, 0, 4), (64, 0, 4), (62, 4, 8)])
    assert FEATURES["avg_pitch_shift"](score)[0] == pytest.approx((4 + 3 + 5) / 3)
    matrix = FEATURES["pitch_class_transition_matrix"](score)
    assert matrix[0, 4] == matrix[4, 7] == matrix[7, 2] == pytest.approx(1 / 3)
    # two distinct onsets one beat apart: the chord is one onset
    assert FEATURES["avg_IOI"](score)[0] == pytest.approx(1.0)


def test_ioi_is_in_beats_whatever_the_grid():
    coarse = score_of([(60, 0, 2), (62, 2, 4), (64, 6, 8)])  # 8th, then a quarter: mean 3 steps
    fine = replace(score_of([(60, 0, 4), (62, 4, 8), (64, 12, 16)]), steps_per_quarter=8)
    assert FEATURES["avg_IOI"](coarse)[0] == pytest.approx(0.75)
    assert FEATURES["avg_IOI"](fine)[0] == pytest.approx(0.75)


def test_drums_are_ignored():
    scale = scale_score()
    drums = Track("drums", tuple(Note(s, s + 1, 36 + s % 5) for s in range(0, 32, 2)), is_drum=True)
    with_drums = scale.with_tracks([*scale.tracks, drums])
    for name, f in FEATURES.items():
        np.testing.assert_array_equal(f(with_drums), f(scale), err_msg=name)


def test_single_note_features_are_finite():
    for name, value in features(score_of([(60, 0, 4)])).items():
        assert np.all(np.isfinite(value)), name
    f = features(score_of([(60, 0, 4)]))
    assert f["avg_pitch_shift"][0] == 0 and f["avg_IOI"][0] == 0
    assert not f["pitch_class_transition_matrix"].any()


def test_intra_and_inter_set_distances():
    a, b, c = np.array([0.0, 0.0]), np.array([3.0, 4.0]), np.array([6.0, 8.0])
    np.testing.assert_allclose(intra_set_distances([a, b, c]), [5, 10, 5])  # pairs ab, ac, bc
    other = [np.array([0.0, 0.0]), np.array([0.0, 1.0])]
    np.testing.assert_allclose(inter_set_distances([a, b, c], other),
                               [0, 1, 5, math.sqrt(18), 10, math.sqrt(85)])
    # matrices are flattened: a 2x2 difference of all ones is 2 apart
    np.testing.assert_allclose(intra_set_distances([np.zeros((2, 2)), np.ones((2, 2))]), [2])


def test_distances_of_pitch_counts_on_scores():
    pieces = [score_of([(60, 0, 4)]), score_of([(60, 0, 4), (62, 4, 8)]),
              score_of([(60, 0, 4), (62, 4, 8), (64, 8, 12), (65, 12, 16)])]  # 1, 2, 4 pitches
    feats = [FEATURES["total_used_pitch"](s) for s in pieces]
    np.testing.assert_allclose(intra_set_distances(feats), [1, 3, 2])


def test_overlap_and_kl_of_a_sample_with_itself():
    x = np.random.default_rng(0).normal(size=200)
    assert overlap_area(x, x) == pytest.approx(1.0, abs=1e-12)
    assert kl_divergence(x, x) == pytest.approx(0.0, abs=1e-12)


def test_far_apart_samples_do_not_overlap():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=100), rng.normal(100, 1, size=100)
    assert overlap_area(x, y) < 1e-6
    assert kl_divergence(x, y) > 10
    assert overlap_area(x, y) == pytest.approx(overlap_area(y, x))


def test_overlap_of_two_normals_matches_the_closed_form():
    # Constant samples get Gaussians of bandwidth h; two of them delta apart overlap by
    # 2 Phi(-delta / 2h) and have KL delta^2 / 2h^2 -- a check of the grid integration.
    h = DEGENERATE_BANDWIDTH
    x, y = np.zeros(5), np.full(7, h)
    assert overlap_area(x, y) == pytest.approx(2 * 0.5 * math.erfc(0.5 / math.sqrt(2)), abs=1e-4)
    assert kl_divergence(x, y) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize(("x", "y"), [
    (np.zeros(10), np.zeros(10)),
    (np.zeros(10), np.random.default_rng(2).uniform(0, 1, 50)),
    (np.array([0.5]), np.array([0.5, 0.7, 0.9])),
    (np.array([3.0]), np.array([3.0])),
])
def test_constant_or_single_samples_are_finite(x, y):
    oa, kl = overlap_area(x, y), kl_divergence(x, y)
    assert 0.0 <= oa <= 1.0 and math.isfinite(kl) and kl >= 0
    if np.array_equal(x, y):
        assert oa == pytest.approx(1.0) and kl == pytest.approx(0.0)


def test_different_constants_do_not_overlap():
    assert overlap_area(np.zeros(4), np.ones(4)) < 1e-6


def random_melody(rng: random.Random, n_notes: int):
    notes, t, pitch = [], 0, rng.randint(55, 70)
    for _ in range(n_notes):
        d = rng.choice([1, 2, 2, 4, 4, 6, 8])
        notes.append((pitch, t, t + d))
        t += d + rng.choice([0, 0, 0, 2])
        pitch = min(100, max(30, pitch + rng.choice([-7, -4, -2, -1, 0, 1, 2, 3, 5, 12])))
    return score_of(notes)


def varied_set(seed: int, n: int):
    rng = random.Random(seed)
    return [random_melody(rng, rng.randint(6, 30)) for _ in range(n)]


def test_a_set_against_itself_overlaps_almost_fully():
    # Not exactly 1: the inter-set distances of a set with itself hold every intra pair
    # twice plus the n zero distances of each piece to itself, a 1/n share of mass at 0
    # (1/12 here) that the intra-set distances lack; Scott's bandwidth also differs with
    # the number of distances. So each OA is near 1 - 1/n, not 1.
    pieces = varied_set(0, 12)
    result = relative_metrics(pieces, pieces)
    for name in FEATURES:
        assert 0.85 <= result[name]["oa"] <= 1.0, (name, result[name])
        assert result[name]["intra_samples_mean"] == result[name]["intra_reference_mean"]
        # inter mean = 2 * (sum of intra pairs) / n^2 = intra mean * (n - 1) / n
        assert result[name]["inter_mean"] == pytest.approx(result[name]["intra_reference_mean"] * 11 / 12)
    assert result["mean_oa"] >= 0.9
    assert result["samples"] == result["reference"] == 12


def test_unlike_samples_overlap_less_than_like_ones():
    reference = varied_set(1, 12)
    like = relative_metrics(varied_set(2, 12), reference)
    # the same note repeated at varying lengths: one pitch, no intervals
    rng = random.Random(3)
    drones = [score_of([(60, 4 * i, 4 * i + rng.choice([1, 4])) for i in range(rng.randint(3, 6))])
              for _ in range(12)]
    unlike = relative_metrics(drones, reference)
    assert unlike["mean_oa"] < like["mean_oa"] - 0.2
    assert unlike["avg_pitch_shift"]["oa"] < 0.5 < like["avg_pitch_shift"]["oa"]
    assert unlike["total_used_pitch"]["intra_samples_mean"] == 0.0


def test_result_is_plain_json():
    result = relative_metrics(varied_set(4, 5), varied_set(5, 6))
    json.dumps(result, allow_nan=False)  # floats and ints only, nothing NaN or infinite
    assert set(result) == {*FEATURES, "mean_oa", "mean_kl", "samples", "reference"}


def test_pieces_without_notes_are_skipped():
    pieces = varied_set(6, 3)
    empty = score_of([])
    drums_only = score_of([(36, 0, 1)], drums=True)
    result = relative_metrics([pieces[0], empty, pieces[1], drums_only], pieces)
    assert result["samples"] == 2 and result["reference"] == 3


@pytest.mark.parametrize(("samples", "reference"), [
    ([0], [0, 1]), ([0, 1], [1]), ([], [0, 1]), ([0, "empty"], [0, 1]),
])
def test_fewer_than_two_pieces_raise(samples, reference):
    pieces = varied_set(7, 2)

    def pick(ids):
        return [score_of([]) if i == "empty" else pieces[i] for i in ids]

    with pytest.raises(ValueError, match=">= 2 pieces with notes"):
        relative_metrics(pick(samples), pick(reference))
