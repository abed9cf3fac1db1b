"""Lookback encoding (lookback_rnn): rows and labels hand-worked from note_seq's
LookbackEventSequenceEncoderDecoder.events_to_input / events_to_label."""

import numpy as np

from tunelab.encodings import LookbackMelodyEncoding
from tunelab.music.constants import MELODY_NO_EVENT as NO
from tunelab.music.constants import MELODY_NOTE_OFF as OFF

# Bar 1: C major arpeggio C4 E4 G4 C5 in quarters, C5 cut to a dotted eighth (off on step 15).
BAR_1 = (60, NO, NO, NO, 64, NO, NO, NO, 67, NO, NO, NO, 72, NO, NO, OFF)
# Bar 2: a descending answer, B4 A4 G4 F4.
BAR_2 = (71, NO, NO, NO, 69, NO, NO, NO, 67, NO, NO, NO, 65, NO, NO, OFF)

# One-hot classes: NO_EVENT 0, NOTE_OFF 1, pitch p -> p - 48 + 2.
C4, E4, G4, C5 = 14, 18, 21, 26
REPEAT_1_BAR, REPEAT_2_BARS = 38, 39


def test_sizes_match_magenta():
    enc = LookbackMelodyEncoding()
    assert (enc.input_size, enc.num_classes, len(enc.vocab)) == (121, 40, 40)
    assert enc.vocab.name(38) == "REPEAT_16_STEPS_AGO"


def test_labels_first_bar():
    labels = LookbackMelodyEncoding().encode(BAR_1).tolist()
    # Before step 32 every NO_EVENT is labelled "repeat 2 bars ago" (note-seq's rule:
    # the lookback reads NO_EVENT before the start, so the two agree).
    assert labels == [C4, 39, 39, 39, E4, 39, 39, 39, G4, 39, 39, 39, C5, 39, 39, 1]


def test_repeating_the_first_bar_gives_repeat_one_bar_labels():
    labels = LookbackMelodyEncoding().encode(BAR_1 + BAR_1).tolist()
    # Bar 2's note-ons and note-off repeat bar 1: label 38; its holds stay 39 (t < 32).
    assert labels[16:] == [38, 39, 39, 39, 38, 39, 39, 39, 38, 39, 39, 39, 38, 39, 39, 38]


def test_two_bars_ago_wins_over_one_bar_ago():
    enc = LookbackMelodyEncoding()
    # Bars 1, 2, 1, 1: bar 3 repeats bar 1 (2 bars ago) -> 39 everywhere; bar 4 repeats
    # both bar 3 and bar 2 only where they agree, and 2-bars-ago is checked first.
    events = BAR_1 + BAR_2 + BAR_1 + BAR_1
    labels = enc.encode(events).tolist()
    assert labels[32:48] == [39] * 16
    # Bar 4 vs bar 2 (32 ago): equal at the holds, G4 on step 8 and the final NOTE_OFF.
    assert labels[48:64] == [38, 39, 39, 39, 38, 39, 39, 39, 39, 39, 39, 39, 38, 39, 39, 39]
    assert enc.decode(labels) == events


def test_feature_rows_by_hand():
    enc = LookbackMelodyEncoding()
    x = enc.inputs(BAR_1 + BAR_1)
    assert x.shape == (32, 121) and x.dtype == np.float32

    # Row 15: current event NOTE_OFF; 1 bar back the *next* event is events[0] = C4;
    # 2 bars back is before the start -> NO_EVENT; counter of 16 = 0b10000; no repeats.
    row = np.zeros(121, dtype=np.float32)
    row[1] = 1
    row[38 + C4] = 1
    row[76 + 0] = 1
    row[114:119] = [-1, -1, -1, -1, 1]
    np.testing.assert_array_equal(x[15], row)

    # Row 16: current C4; next-if-repeating 1 bar is events[1] = NO_EVENT; counter of
    # 17 = 0b10001; events[16] == events[0] sets the first repeat flag.
    row = np.zeros(121, dtype=np.float32)
    row[C4] = 1
    row[38 + 0] = 1
    row[76 + 0] = 1
    row[114:119] = [1, -1, -1, -1, 1]
    row[119] = 1
    np.testing.assert_array_equal(x[16], row)


def test_round_trips():
    enc = LookbackMelodyEncoding()
    for events in [BAR_1, BAR_1 + BAR_2 + BAR_1, (NO,) * 40 + BAR_2, (OFF, 60), ()]:
        assert enc.decode(enc.encode(events)) == tuple(events)


def test_training_pair_aligns_rows_with_next_labels():
    enc = LookbackMelodyEncoding()
    inputs, labels = enc.training_pair(BAR_1 + BAR_1)
    assert inputs.shape == (31, 121) and labels.shape == (31,)
    assert labels[15] == 38  # row 15 predicts step 16, a repeat of step 0
