"""One-hot melody encoding of MelodyRNN's ``basic_rnn`` / ``mono_rnn`` configs.

Class 0 is NO_EVENT, 1 is NOTE_OFF, ``2 + (p - min_note)`` is note-on of pitch ``p``.
Row ``t`` of :meth:`MelodyOneHotEncoding.inputs` is the one-hot of ``events[t]``; as in
Magenta's ``EventSequenceEncoderDecoder.encode``, a model is trained on
``inputs[:-1]`` -> ``labels[1:]`` (see :meth:`MelodyOneHotEncoding.training_pair`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tunelab.encodings.vocab import Vocab
from tunelab.music.constants import (
    DEFAULT_MAX_NOTE,
    DEFAULT_MIN_NOTE,
    MAX_MIDI_PITCH,
    MELODY_NO_EVENT,
    MIN_MIDI_PITCH,
)
from tunelab.music.melody import Melody

NUM_SPECIAL_MELODY_EVENTS = 2  # NO_EVENT and NOTE_OFF


def as_events(melody: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
    """The event list of a :class:`Melody` or of a plain sequence, as an int64 array."""
    events = melody.events if isinstance(melody, Melody) else melody
    return np.asarray(events, dtype=np.int64).reshape(-1)


def check_melody_range(events: np.ndarray, min_note: int, max_note: int) -> None:
    """Raises ValueError naming the first event that is not a melody event in range.

    Args:
        events: Melody events.
        min_note: Lowest allowed pitch (inclusive).
        max_note: Highest allowed pitch (exclusive).
    """
    out_of_range = (events >= 0) & ((events < min_note) | (events >= max_note))
    bad = (events < MELODY_NO_EVENT) | out_of_range
    if bad.any():
        i = int(np.argmax(bad))
        ev = int(events[i])
        if ev < MELODY_NO_EVENT:
            raise ValueError(f"invalid melody event {ev} at step {i}")
        raise ValueError(
            f"pitch {ev} at step {i} outside the encoding's range [{min_note}, {max_note})"
        )


# Mirrors note_seq melody_encoder_decoder.MelodyOneHotEncoding + OneHotEventSequenceEncoderDecoder.
class MelodyOneHotEncoding:
    """One class per melody event: NO_EVENT, NOTE_OFF, then pitches ``[min_note, max_note)``.

    ``MelodyOneHotEncoding()`` is ``basic_rnn`` (38 classes); ``MelodyOneHotEncoding(0, 128)``
    is ``mono_rnn`` (130 classes).
    """

    def __init__(self, min_note: int = DEFAULT_MIN_NOTE, max_note: int = DEFAULT_MAX_NOTE) -> None:
        """Configures the encoding.

        Args:
            min_note: Lowest encodable pitch (inclusive), >= 0.
            max_note: Highest encodable pitch (exclusive), <= 128.

        Raises:
            ValueError: the range is empty or outside MIDI.
        """
        if min_note < MIN_MIDI_PITCH or max_note > MAX_MIDI_PITCH + 1 or max_note <= min_note:
            raise ValueError(f"bad note range [{min_note}, {max_note}); need 0 <= min < max <= 128")
        self.min_note = min_note
        self.max_note = max_note
        if (min_note, max_note) == (DEFAULT_MIN_NOTE, DEFAULT_MAX_NOTE):
            self.name = "basic"
        elif (min_note, max_note) == (MIN_MIDI_PITCH, MAX_MIDI_PITCH + 1):
            self.name = "mono"
        else:
            self.name = f"melody_onehot_{min_note}_{max_note}"
        self._vocab = Vocab(
            ("NO_EVENT", "NOTE_OFF") + tuple(f"NOTE_ON_{p}" for p in range(min_note, max_note))
        )

    @property
    def num_classes(self) -> int:
        return self.max_note - self.min_note + NUM_SPECIAL_MELODY_EVENTS

    @property
    def input_size(self) -> int:
        return self.num_classes

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    @property
    def default_event(self) -> int:
        return MELODY_NO_EVENT

    def encode_event(self, event: int) -> int:
        """Class index of one melody event."""
        return int(self.encode([event])[0])

    def decode_event(self, index: int) -> int:
        """Melody event of one class index."""
        return self.decode([index])[0]

    def encode(self, events: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
        """Labels, one per event.

        Args:
            events: Melody events (or a :class:`Melody`).

        Returns:
            int64 array of class indices, same length as ``events``.

        Raises:
            ValueError: a pitch outside ``[min_note, max_note)`` or an invalid event.
        """
        ev = as_events(events)
        check_melody_range(ev, self.min_note, self.max_note)
        # Specials -2/-1 map to 0/1; pitches shift past the two specials.
        return np.where(
            ev < 0, ev + NUM_SPECIAL_MELODY_EVENTS, ev - self.min_note + NUM_SPECIAL_MELODY_EVENTS
        ).astype(np.int64)

    def decode(self, labels: Sequence[int] | np.ndarray) -> tuple[int, ...]:
        """Melody events of ``labels`` (the inverse of :meth:`encode`).

        Raises:
            ValueError: a label outside ``[0, num_classes)``.
        """
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        if ((lab < 0) | (lab >= self.num_classes)).any():
            bad = int(lab[(lab < 0) | (lab >= self.num_classes)][0])
            raise ValueError(f"label {bad} outside [0, {self.num_classes})")
        ev = np.where(
            lab < NUM_SPECIAL_MELODY_EVENTS,
            lab - NUM_SPECIAL_MELODY_EVENTS,
            lab - NUM_SPECIAL_MELODY_EVENTS + self.min_note,
        )
        return tuple(int(e) for e in ev)

    def inputs(self, events: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
        """One-hot input rows: row ``t`` encodes ``events[t]``.

        Returns:
            float32 array of shape ``(len(events), input_size)``.
        """
        labels = self.encode(events)
        out = np.zeros((len(labels), self.input_size), dtype=np.float32)
        out[np.arange(len(labels)), labels] = 1.0
        return out

    def training_pair(
        self, events: Melody | Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Magenta's ``encode``: inputs for events ``0..T-2`` and labels for ``1..T-1``."""
        return self.inputs(events)[:-1], self.encode(events)[1:]
