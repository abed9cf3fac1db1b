"""MelodyRNN ``attention_rnn`` encoding: pitch, attack, contour, meter and key features.

Feature row ``t`` (input_size 74 for ``[48, 84)``, two lookbacks, 7 counter bits) describes
``events[:t+1]``:

* ``[0, 36)``  one-hot of the sounding pitch (none during silence);
* ``36 / 37``  a note is sounding / silence;
* ``38``       attack: the last event that is not NOTE_OFF is a note-on (note-seq leaves this
  flag alone on NOTE_OFF, so ``[60, NOTE_OFF]`` still reads as an attack);
* ``39``       contour: +1 if the last pitch change went up, -1 if down, 0 before any change;
* ``40, 41``   ``events[t] == events[t - 16]`` (resp. ``t - 32``);
* ``[42, 49)`` binary counter of ``t + 1`` as +1/-1 bits;
* ``49``       the next step starts a bar (``(t + 1) % 16 == 0``, 16 fixed as in note-seq);
* ``[50, 62)`` every major key tied for the most notes of ``events[:t+1]`` (all 12 before a note);
* ``[62, 74)`` the same for the last three *distinct* pitches played.

Labels (40): ``[0, 36)`` note-on of ``48 + i``, ``36`` NO_EVENT, ``37`` NOTE_OFF, ``38`` / ``39``
repeat of 1 / 2 bars ago (the latter wins, and also stands for any NO_EVENT at ``t < 32``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tunelab.encodings.lookback import (
    DEFAULT_LOOKBACK_DISTANCES,
    DEFAULT_STEPS_PER_BAR,
    binary_counter,
    repeat_flags,
)
from tunelab.encodings.melody_onehot import as_events, check_melody_range
from tunelab.encodings.vocab import Vocab
from tunelab.music.constants import (
    DEFAULT_MAX_NOTE,
    DEFAULT_MIN_NOTE,
    MELODY_NO_EVENT,
    MELODY_NOTE_OFF,
    NOTE_KEYS,
    NOTES_PER_OCTAVE,
)
from tunelab.music.melody import Melody

# KEY_MEMBERSHIP[pc, key] = 1 when pitch class pc belongs to the major scale of `key`.
KEY_MEMBERSHIP = np.zeros((NOTES_PER_OCTAVE, NOTES_PER_OCTAVE))
for _pc, _keys in enumerate(NOTE_KEYS):
    KEY_MEMBERSHIP[_pc, list(_keys)] = 1.0


def _best_keys(pc_counts: np.ndarray) -> np.ndarray:
    """Rows of 1.0 for every major key tied for the most notes of that row's pitch-class
    counts (note-seq ``get_major_key_histogram``, then ``== max``)."""
    key_hist = pc_counts @ KEY_MEMBERSHIP
    return (key_hist == key_hist.max(axis=-1, keepdims=True)).astype(np.float32)


# Mirrors note_seq melody_encoder_decoder.KeyMelodyEncoderDecoder.
class KeyMelodyEncoding:
    """Key-aware melody encoder/decoder (``attention_rnn``), same features and labels."""

    name = "key_melody"

    def __init__(
        self,
        min_note: int = DEFAULT_MIN_NOTE,
        max_note: int = DEFAULT_MAX_NOTE,
        lookback_distances: Sequence[int] = DEFAULT_LOOKBACK_DISTANCES,
        binary_counter_bits: int = 7,
    ) -> None:
        """Configures the encoding.

        Args:
            min_note: Lowest encodable pitch (inclusive).
            max_note: Highest encodable pitch (exclusive).
            lookback_distances: Steps to look back (at least one, as note-seq indexes the last).
            binary_counter_bits: Number of metric counter bits.
        """
        if not 0 <= min_note < max_note <= 128:
            raise ValueError(f"bad note range [{min_note}, {max_note}); need 0 <= min < max <= 128")
        if not lookback_distances or any(d <= 0 for d in lookback_distances):
            raise ValueError(f"need positive lookback distances, got {lookback_distances}")
        self.min_note = min_note
        self.max_note = max_note
        self.note_range = max_note - min_note
        self.lookback_distances = tuple(int(d) for d in lookback_distances)
        self.binary_counter_bits = binary_counter_bits
        self._vocab = Vocab(
            tuple(f"NOTE_ON_{p}" for p in range(min_note, max_note))
            + ("NO_EVENT", "NOTE_OFF")
            + tuple(f"REPEAT_{d}_STEPS_AGO" for d in self.lookback_distances)
        )

    @property
    def num_classes(self) -> int:
        return self.note_range + 2 + len(self.lookback_distances)

    @property
    def input_size(self) -> int:
        return (
            self.note_range + 2  # sounding pitch, note vs silence
            + 1 + 1  # attack, contour
            + len(self.lookback_distances)
            + self.binary_counter_bits
            + 1  # next step starts a bar
            + 2 * NOTES_PER_OCTAVE  # key estimates: whole melody, last three notes
        )

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    @property
    def default_event_label(self) -> int:
        return self.note_range

    def _checked(self, events: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
        ev = as_events(events)
        check_melody_range(ev, self.min_note, self.max_note)
        return ev

    def encode(self, events: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
        """Labels ``events_to_label(events, t)`` for every position ``t``.

        Raises:
            ValueError: a pitch outside ``[min_note, max_note)``.
        """
        ev = self._checked(events)
        r = self.note_range
        labels = np.where(ev >= 0, ev - self.min_note, 0).astype(np.int64)
        labels[ev == MELODY_NO_EVENT] = r
        labels[ev == MELODY_NOTE_OFF] = r + 1
        flags = repeat_flags(ev, self.lookback_distances)
        for i in range(len(self.lookback_distances)):  # the last lookback has precedence
            labels[flags[:, i]] = r + 2 + i
        early = np.arange(len(ev)) < self.lookback_distances[-1]
        labels[early & (ev == MELODY_NO_EVENT)] = r + 2 + len(self.lookback_distances) - 1
        return labels

    def decode(self, labels: Sequence[int] | np.ndarray) -> tuple[int, ...]:
        """Events for ``labels``, resolving repeat labels from the events decoded so far.

        Raises:
            ValueError: a label outside ``[0, num_classes)``.
        """
        r = self.note_range
        events: list[int] = []
        for lab in np.asarray(labels, dtype=np.int64).reshape(-1).tolist():
            if not 0 <= lab < self.num_classes:
                raise ValueError(f"label {lab} outside [0, {self.num_classes})")
            if lab >= r + 2:
                d = self.lookback_distances[lab - r - 2]
                events.append(events[-d] if len(events) >= d else MELODY_NO_EVENT)
            elif lab == r + 1:
                events.append(MELODY_NOTE_OFF)
            elif lab == r:
                events.append(MELODY_NO_EVENT)
            else:
                events.append(self.min_note + lab)
        return tuple(events)

    def inputs(self, events: Melody | Sequence[int] | np.ndarray) -> np.ndarray:
        """Feature rows; row ``t`` equals note-seq's ``events_to_input(events, t)``.

        One left-to-right pass carries the state note-seq rebuilds from ``events[:t+1]``.

        Returns:
            float32 array of shape ``(len(events), input_size)``.
        """
        ev = self._checked(events)
        n, r = len(ev), self.note_range
        out = np.zeros((n, self.input_size), dtype=np.float32)
        flags = repeat_flags(ev, self.lookback_distances)
        o_attack = r + 2
        o_contour = o_attack + 1
        o_repeat = o_contour + 1
        o_counter = o_repeat + len(self.lookback_distances)
        o_bar = o_counter + self.binary_counter_bits
        o_key = o_bar + 1
        o_recent_key = o_key + NOTES_PER_OCTAVE

        # One pass over the events carries the melody state note-seq rebuilds per position;
        # the per-row features are then filled in column blocks.
        note_now = np.full(n, -1, dtype=np.int64)  # sounding pitch, -1 in silence
        attack = np.zeros(n, dtype=np.float32)
        contour = np.zeros(n, dtype=np.float32)
        onset_pc = np.zeros((n, NOTES_PER_OCTAVE))  # pitch class struck at each step
        recent_pc = np.zeros((n, NOTES_PER_OCTAVE))  # pitch classes of the last 3 distinct notes
        current_note: int | None = None
        is_attack = False
        is_ascending: bool | None = None
        last_3: list[int] = []  # up to three distinct pitches, most recent last
        for t, e in enumerate(ev.tolist()):
            if e == MELODY_NO_EVENT:
                is_attack = False
            elif e == MELODY_NOTE_OFF:
                current_note = None  # note-seq leaves is_attack as it was
            else:
                is_attack = True
                current_note = e
                if last_3 and e != last_3[-1]:
                    is_ascending = e > last_3[-1]
                if e in last_3:
                    last_3.remove(e)
                last_3.append(e)
                del last_3[:-3]
                onset_pc[t, e % NOTES_PER_OCTAVE] = 1.0
            # note-seq tests `if current_note:`, so pitch 0 reads as silence; kept for parity.
            if current_note:
                note_now[t] = current_note
            attack[t] = is_attack
            if is_ascending is not None:
                contour[t] = 1.0 if is_ascending else -1.0
            for p in last_3:
                recent_pc[t, p % NOTES_PER_OCTAVE] += 1.0

        rows = np.arange(n)
        sounding = note_now >= 0
        out[rows[sounding], note_now[sounding] - self.min_note] = 1.0
        out[sounding, r] = 1.0
        out[~sounding, r + 1] = 1.0
        out[:, o_attack] = attack
        out[:, o_contour] = contour
        out[:, o_repeat:o_counter] = flags
        out[:, o_counter:o_bar] = binary_counter(rows + 1, self.binary_counter_bits)
        out[:, o_bar] = (rows + 1) % DEFAULT_STEPS_PER_BAR == 0
        out[:, o_key:o_recent_key] = _best_keys(np.cumsum(onset_pc, axis=0))
        out[:, o_recent_key:] = _best_keys(recent_pc)
        return out

    def training_pair(
        self, events: Melody | Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Magenta's ``encode``: inputs for events ``0..T-2`` and labels for ``1..T-1``."""
        return self.inputs(events)[:-1], self.encode(events)[1:]
