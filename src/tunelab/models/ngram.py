"""Count-based n-gram baseline over token labels, with add-k smoothing.

P(x_t | x_{t-n+1..t-1}) = (count(context, x_t) + k) / (count(context) + k * V), with the
context padded by a begin symbol. It predicts exactly the positions the neural models
predict (labels[1:] of each sequence, given everything before), so NLL per step compares.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

BEGIN = -1


class NGramModel:
    """An order-``n`` Markov model with add-``k`` smoothing over ``vocab_size`` labels."""

    def __init__(self, order: int, vocab_size: int, k: float = 0.1) -> None:
        if order < 1 or k <= 0:
            raise ValueError(f"order={order} must be >= 1 and k={k} > 0")
        self.order, self.vocab_size, self.k = order, vocab_size, k
        self.joint: Counter = Counter()
        self.context: Counter = Counter()

    def _contexts(self, seq: Sequence[int]):
        padded = [BEGIN] * (self.order - 1) + [int(x) for x in seq]
        for t in range(self.order - 1, len(padded)):
            yield tuple(padded[t - self.order + 1:t]), padded[t]

    def fit(self, sequences: Sequence[np.ndarray]) -> NGramModel:
        for seq in sequences:
            for ctx, x in self._contexts(seq):
                self.joint[ctx, x] += 1
                self.context[ctx] += 1
        return self

    def nll(self, sequences: Sequence[np.ndarray]) -> tuple[float, int]:
        """Summed NLL in nats of labels[1:] of every sequence, and the number of steps."""
        total, steps = 0.0, 0
        denom_k = self.k * self.vocab_size
        for seq in sequences:
            for t, (ctx, x) in enumerate(self._contexts(seq)):
                if t == 0:
                    continue  # the first label is given, as for the neural models
                p = (self.joint[ctx, x] + self.k) / (self.context[ctx] + denom_k)
                total -= math.log(p)
                steps += 1
        return total, steps


def fit_baseline(train: Sequence[np.ndarray], valid: Sequence[np.ndarray], vocab_size: int,
                 orders: Sequence[int] = (2, 3), ks: Sequence[float] = (0.01, 0.05, 0.1, 0.5, 1.0)
                 ) -> NGramModel:
    """The order and k with the lowest validation NLL (a fair, tuned baseline)."""
    best, best_nll = None, math.inf
    for order in orders:
        for k in ks:
            model = NGramModel(order, vocab_size, k).fit(train)
            total, steps = model.nll(valid)
            if steps and total / steps < best_nll:
                best, best_nll = model, total / steps
    if best is None:
        raise ValueError("no validation steps to choose the n-gram baseline on")
    return best
