"""Key-melody encoding (attention_rnn): rows and labels hand-worked from note_seq's
KeyMelodyEncoderDecoder.events_to_input / events_to_label."""

import numpy as np

from tunelab.encodings import KeyMelodyEncoding
from tunelab.music.constants import MELODY_NO_EVENT as NO
from tunelab.music.constants import MELODY_NOTE_OFF as OFF

# C4 . E4 . G4 off F4 B4: a C major outline, then F and B settle the key on C major.
PHRASE = (60, NO, 64, NO, 67, OFF, 65, 71)
C_MAJOR, F_MAJOR, G_MAJOR = 0, 5, 7
KEYS_WITH_C = [0, 1, 3, 5, 7, 8, 10]  # major keys whose scale contains C


def _row(pitch=None, attack=0.0, contour=0.0, repeats=(0, 0), n=1, keys=(), recent_keys=()):
    """A 74-wide feature row built field by field, following note-seq's layout."""
    row = np.zeros(74, dtype=np.float32)
    if pitch is None:
        row[37] = 1
    else:
        row[pitch - 48] = 1
        row[36] = 1
    row[38] = attack
    row[39] = contour
    row[40:42] = repeats
    row[42:49] = [1 if (n >> i) & 1 else -1 for i in range(7)]
    row[49] = 1 if n % 16 == 0 else 0
    row[[50 + k for k in keys]] = 1
    row[[62 + k for k in recent_keys]] = 1
    return row


def test_sizes_match_magenta():
    enc = KeyMelodyEncoding()
    assert (enc.input_size, enc.num_classes, len(enc.vocab)) == (74, 40, 40)
    assert enc.vocab.name(36) == "NO_EVENT" and enc.vocab.name(39) == "REPEAT_32_STEPS_AGO"


def test_labels_by_hand():
    # Pitches -> p - 48; NOTE_OFF -> 37; NO_EVENT before step 32 -> 39 (repeat 2 bars).
    assert KeyMelodyEncoding().encode(PHRASE).tolist() == [12, 39, 16, 39, 19, 37, 17, 23]


def test_repeat_labels_and_plain_no_event_after_two_bars():
    enc = KeyMelodyEncoding()
    bar = (60, NO, NO, NO, 62, NO, NO, NO, 64, NO, NO, NO, 65, NO, OFF, NO)
    other = (72, NO, NO, NO, NO, NO, NO, NO, 71, NO, NO, NO, NO, NO, NO, OFF)
    events = bar + bar + other + (67, NO)
    labels = enc.encode(events).tolist()
    assert labels[16] == 38 and labels[30] == 38  # bar 2 repeats bar 1
    assert labels[17] == 39  # still inside the first 32 steps
    # Step 48 (G4) repeats nothing; step 49 (NO_EVENT) matches step 17 (2 bars ago) -> 39.
    assert labels[48:50] == [19, 39]
    assert labels[32:34] == [24, 39]  # C5 is new; its hold matches step 1's (2 bars ago)
    # Step 36 holds C5 where bars 1 and 2 struck D4: no repeat, a plain NO_EVENT (36).
    assert labels[36] == 36
    assert enc.decode(labels) == events


def test_feature_rows_by_hand():
    x = KeyMelodyEncoding().inputs(PHRASE)
    assert x.shape == (8, 74) and x.dtype == np.float32
    # t=0: C4 attacked; no contour yet; every key containing C ties, for all and recent notes.
    np.testing.assert_array_equal(
        x[0], _row(60, attack=1, n=1, keys=KEYS_WITH_C, recent_keys=KEYS_WITH_C)
    )
    # t=3: E4 held (no attack); rising; C and E both fit C, F and G major.
    np.testing.assert_array_equal(
        x[3], _row(64, attack=0, contour=1, n=4, keys=[C_MAJOR, F_MAJOR, G_MAJOR],
                   recent_keys=[C_MAJOR, F_MAJOR, G_MAJOR])
    )
    # t=5: NOTE_OFF -> silence, but note-seq leaves the attack flag of G4 set.
    np.testing.assert_array_equal(
        x[5], _row(None, attack=1, contour=1, n=6, keys=[C_MAJOR, F_MAJOR, G_MAJOR],
                   recent_keys=[C_MAJOR, F_MAJOR, G_MAJOR])
    )
    # t=6: F4 falls from G4; C E G F tie C and F major; last three E G F also C and F.
    np.testing.assert_array_equal(
        x[6], _row(65, attack=1, contour=-1, n=7, keys=[C_MAJOR, F_MAJOR],
                   recent_keys=[C_MAJOR, F_MAJOR])
    )
    # t=7: B4 rises; B rules out F major (Bb) and G major lacks F: C major alone.
    np.testing.assert_array_equal(
        x[7], _row(71, attack=1, contour=1, n=8, keys=[C_MAJOR], recent_keys=[C_MAJOR])
    )


def test_bar_flag_and_repeat_flags():
    enc = KeyMelodyEncoding()
    bar = (60, NO, NO, NO, 64, NO, NO, NO, 67, NO, NO, NO, 72, NO, NO, OFF)
    x = enc.inputs(bar + bar)
    assert x[15, 49] == 1 and x[14, 49] == 0  # row 15 precedes the downbeat of bar 2
    assert x[16, 40] == 1 and x[16, 41] == 0  # C4 again, one bar later
    assert x[:16, 40:42].sum() == 0


def test_round_trip_and_range():
    enc = KeyMelodyEncoding()
    for events in [PHRASE, PHRASE * 6, (NO, OFF, NO), ()]:
        assert enc.decode(enc.encode(events)) == tuple(events)
        assert enc.inputs(events).shape == (len(events), 74)
    try:
        enc.encode([60, 90])
    except ValueError as err:
        assert "pitch 90" in str(err) and "[48, 84)" in str(err)
    else:
        raise AssertionError("pitch 90 should be out of range")
