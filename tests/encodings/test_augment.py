"""The shared transposition augmenter: only the pitched id range moves, by one shift."""

import numpy as np
import pytest

from tunelab.encodings.augment import transposer


def test_only_pitched_ids_move_and_all_by_the_same_shift():
    apply = transposer(2, pitched=(2, 10))
    tokens = np.array([0, 1, 5, 6, 10, 11, 7])  # specials below, a start token above the range
    rng = np.random.default_rng(0)
    shifts = set()
    for _ in range(40):
        out = apply(tokens, rng)
        np.testing.assert_array_equal(out[[0, 1, 4, 5]], [0, 1, 10, 11])
        moved = out[[2, 3, 6]] - tokens[[2, 3, 6]]
        assert len(set(moved.tolist())) == 1
        shifts.add(int(moved[0]))
    assert shifts == {-2, -1, 0, 1, 2}


def test_a_shift_that_leaves_the_range_keeps_the_pitches():
    apply = transposer(3, pitched=(2, 10))
    edge = np.array([2, 9])  # lowest and highest pitch: every non-zero shift leaves the range
    rng = np.random.default_rng(1)
    assert all(apply(edge, rng).tolist() == [2, 9] for _ in range(30))


def test_negative_range_is_refused():
    with pytest.raises(ValueError, match="transpose must be >= 0"):
        transposer(-1, pitched=(0, 128))
