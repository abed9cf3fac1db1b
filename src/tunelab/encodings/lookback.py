"""MelodyRNN ``lookback_rnn`` encoding: melody one-hot plus bar-repeat labels and meter bits.

Feature row ``t`` (input_size 121 for the defaults) describes ``events[:t+1]``:

* ``[0, 38)``    one-hot of ``events[t]``;
* ``[38, 76)``   one-hot of the event that would come *next* if repeating 1 bar ago,
  i.e. ``events[t - 16 + 1]`` (NO_EVENT before the start);
* ``[76, 114)``  the same for 2 bars ago (``events[t - 32 + 1]``);
* ``[114, 119)`` binary counter of ``t + 1`` (the next step's metric position):
  bit ``i`` is +1 if set, -1 if not (16th, 8th, quarter, half, whole);
* ``119, 120``   1 if ``events[t] == events[t - 16]`` (resp. ``t - 32``).

Label ``t`` (40 classes) is the one-hot class of ``events[t]`` unless it repeats a lookback:
``39`` if ``events[t] == events[t - 32]`` (also for every NO_EVENT at ``t < 32``), else ``38``
if ``events[t] == events[t - 16]``. Decoding resolves repeat labels against the events decoded
so far, so ``decode(encode(x)) == x``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tunelab.encodings.melody_onehot import MelodyOneHotEncoding, as_events
from tunelab.encodings.vocab import Vocab
from tunelab.music.constants import DEFAULT_MAX_NOTE, DEFAULT_MIN_NOTE
from tunelab.music.melody import Melody

DEFAULT_STEPS_PER_BAR = 16  # note-seq's constant: 4/4 at 4 steps per quarter
DEFAULT_LOOKBACK_DISTANCES = (DEFAULT_STEPS_PER_BAR, 2 * DEFAULT_STEPS_PER_BAR)


def binary_counter(positions: np.ndarray, bits: int) -> np.ndarray:
    """Magenta's metric counter: bit ``i`` of each position as +1.0 / -1.0.

    Returns:
        float32 array of shape ``(len(positions), bits)``.
    """
    set_bits = (positions[:, None] >> np.arange(bits)[None, :]) & 1
    return np.where(set_bits == 1, 1.0, -1.0).astype(np.float32)


def repeat_flags(events: np.ndarray, distances: Sequence[int]) -> np.ndarray:
    """``flags[t, i]`` is True when ``events[t] == events[t - distances[i]]``."""
    n = len(events)
    flags = np.zeros((n, len(distances)), dtype=bool)
    for i, d in enumerate(distances):
        if d < n:
            flags[d:, i] = events[d:] == events[:-d]
    return flags


# Mirrors note_seq encoder_decoder.LookbackEventSequenceEncoderDecoder (over MelodyOneHotEncoding).
class LookbackMelodyEncoding:
    """Lookback encoder/decoder over :class:`MelodyOneHotEncoding` (``lookback_rnn``)."""

    name = "lookback"

    def __init__(
        self,
        min_note: int = DEFAULT_MIN_NOTE,
        max_note: int = DEFAULT_MAX_NOTE,
        lookback_distances: Sequence[int] = DEFAULT_LOOKBACK_DISTANCES,
        binary_counter_bits: int = 5,
    ) -> None:
        """Configures the encoding.

        Args:
            min_note: Lowest encodable pitch (inclusive).
            max_note: Highest encodable pitch (exclusive).
            lookback_distances: Steps to look back; the last one also governs the
                NO_EVENT rule for early positions, as in note-seq.
            binary_counter_bits: Number of metric counter bits.
        """
        self.one_hot = MelodyOneHotEncoding(min_note, max_note)
        self.lookback_distances = tuple(int(d) for d in lookback_distances)
        if any(d <= 0 for d in self.lookback_distances):
            raise ValueError(f"lookback distances must be positive: {self.lookback_distances}")
        self.binary_counter_bits = binary_counter_bits
        self._vocab = Vocab(
            self.one_hot.vocab.tokens
            + tuple(f"REPEAT_{d}_STEPS_AGO" for d in self.lookback_distances)
        )

    @property
    def num_classes(self) -> int:
        return self.one_hot.num_classes + len(self.lookback_distances)

    @property
    def input_size(self) -> int:
        k = self.one_hot.num_classes
        n = len(self.lookback_distances)
        return k + n * k + self.binary_counter_bits + n

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    def encode(self, events: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
        """Labels ``events_to_label(events, t)`` for every position ``t``.

        Raises:
            ValueError: a pitch outside the one-hot range.
        """
        ev = as_events(events)
        labels = self.one_hot.encode(ev)
        k = self.one_hot.num_classes
        flags = repeat_flags(ev, self.lookback_distances)
        # Apply in increasing precedence: the last lookback wins, as note-seq checks it first.
        for i in range(len(self.lookback_distances)):
            labels[flags[:, i]] = k + i
        if self.lookback_distances:
            # note-seq: a NO_EVENT before the last lookback can exist counts as its repeat.
            early = np.arange(len(ev)) < self.lookback_distances[-1]
            last_repeat = k + len(self.lookback_distances) - 1
            labels[early & (ev == self.one_hot.default_event)] = last_repeat
        return labels

    def decode(self, labels: Sequence[int] | np.ndarray) -> tuple[int, ...]:
        """Events for ``labels``, resolving repeat labels from the events decoded so far.

        Raises:
            ValueError: a label outside ``[0, num_classes)``.
        """
        k = self.one_hot.num_classes
        events: list[int] = []
        for lab in np.asarray(labels, dtype=np.int64).reshape(-1).tolist():
            if not 0 <= lab < self.num_classes:
                raise ValueError(f"label {lab} outside [0, {self.num_classes})")
            if lab >= k:
                d = self.lookback_distances[lab - k]
                # Before `d` events exist the repeat means the default event (note-seq).
                events.append(events[-d] if len(events) >= d else self.one_hot.default_event)
            else:
                events.append(lab - 2 if lab < 2 else lab - 2 + self.one_hot.min_note)
        return tuple(events)

    def inputs(self, events: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
        """Feature rows; row ``t`` equals note-seq's ``events_to_input(events, t)``.

        Returns:
            float32 array of shape ``(len(events), input_size)``.
        """
        ev = as_events(events)
        n, k = len(ev), self.one_hot.num_classes
        cur = self.one_hot.encode(ev)
        out = np.zeros((n, self.input_size), dtype=np.float32)
        rows = np.arange(n)
        out[rows, cur] = 1.0
        offset = k
        default_label = self.one_hot.encode_event(self.one_hot.default_event)
        for d in self.lookback_distances:
            # The event that follows the one `d` steps back: what a repeat would play next.
            src = rows - d + 1
            nxt = np.where(src >= 0, cur[np.clip(src, 0, None)], default_label)
            out[rows, offset + nxt] = 1.0
            offset += k
        bits = self.binary_counter_bits
        out[:, offset:offset + bits] = binary_counter(rows + 1, bits)
        offset += bits
        out[:, offset:] = repeat_flags(ev, self.lookback_distances)
        return out

    def training_pair(
        self, events: Melody | Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Magenta's ``encode``: inputs for events ``0..T-2`` and labels for ``1..T-1``."""
        return self.inputs(events)[:-1], self.encode(events)[1:]
