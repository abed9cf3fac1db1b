"""Magenta's beam search over event sequences (magenta/common/beam_search.py).

The beam starts as ``beam_size`` copies of the primer. Each iteration extends every
entry ``branch_factor`` times by ``steps_per_iteration`` steps (sampled, so branches
differ), then keeps the ``beam_size`` entries with the highest total log-likelihood. With
beam 1, branch 1 it is plain ancestral sampling (or greedy decoding).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Protocol, TypeVar


class Scored(Protocol):
    score: float


E = TypeVar("E", bound=Scored)


def _branch(beam: list[E], step: Callable[[E], E], branch_factor: int, num_steps: int) -> list[E]:
    entries = beam * branch_factor  # entries are immutable: step() returns new ones
    for _ in range(num_steps):
        entries = [step(e) for e in entries]
    return entries


def _prune(beam: list[E], k: int) -> list[E]:
    return heapq.nlargest(k, beam, key=lambda e: e.score)


def beam_search(initial: E, step: Callable[[E], E], num_steps: int, beam_size: int = 1,
                branch_factor: int = 1, steps_per_iteration: int = 1) -> E:
    """The highest-scoring entry after ``num_steps`` steps of ``step``.

    Args:
        initial: the primed entry (sequence, model state, score 0).
        step: extends one entry by one event and adds its log-probability to the score.
        num_steps: events to generate.
        beam_size, branch_factor, steps_per_iteration: as in Magenta's generators.
    """
    if min(beam_size, branch_factor, steps_per_iteration) < 1:
        raise ValueError("beam_size, branch_factor and steps_per_iteration must be >= 1")
    if num_steps <= 0:
        return initial
    beam = [initial] * beam_size
    first = (num_steps - 1) % steps_per_iteration + 1  # so later iterations are whole
    beam = _branch(beam, step, branch_factor, first)
    for _ in range((num_steps - first) // steps_per_iteration):
        beam = _prune(beam, beam_size)
        beam = _branch(beam, step, branch_factor, steps_per_iteration)
    return _prune(beam, 1)[0]
