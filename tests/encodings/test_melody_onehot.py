"""Melody one-hot (basic_rnn / mono_rnn), as note_seq MelodyOneHotEncoding."""

import numpy as np
import pytest

from tunelab.encodings import MelodyOneHotEncoding
from tunelab.music.constants import MELODY_NO_EVENT as NO
from tunelab.music.constants import MELODY_NOTE_OFF as OFF
from tunelab.music.melody import Melody

# C major scale C4..C5, one quarter note (4 steps) each, then a rest.
C_MAJOR_SCALE = tuple(
    e for p in (60, 62, 64, 65, 67, 69, 71, 72) for e in (p, NO, NO, NO)
) + (OFF, NO, NO, NO)


def test_sizes_match_magenta():
    basic, mono = MelodyOneHotEncoding(), MelodyOneHotEncoding(0, 128)
    assert (basic.num_classes, basic.input_size, basic.name) == (38, 38, "basic")
    assert (mono.num_classes, mono.input_size, mono.name) == (130, 130, "mono")


def test_class_layout():
    enc = MelodyOneHotEncoding()
    # NO_EVENT, NOTE_OFF, then C3 (48) .. B5 (83).
    assert enc.encode([NO, OFF, 48, 60, 83]).tolist() == [0, 1, 2, 14, 37]
    assert enc.encode([NO]).dtype == np.int64
    assert enc.vocab.name(14) == "NOTE_ON_60"
    assert MelodyOneHotEncoding(0, 128).encode([0, 127]).tolist() == [2, 129]


def test_round_trip_scale_and_melody_object():
    enc = MelodyOneHotEncoding()
    assert enc.decode(enc.encode(C_MAJOR_SCALE)) == C_MAJOR_SCALE
    mel = Melody(C_MAJOR_SCALE)
    assert enc.decode(enc.encode(mel)) == mel.events
    # mono covers the whole MIDI range, e.g. a bass A0 followed by a piccolo C8.
    mono = MelodyOneHotEncoding(0, 128)
    wide = (21, NO, OFF, 108, NO)
    assert mono.decode(mono.encode(wide)) == wide


@pytest.mark.parametrize("pitch", [47, 84, 30])
def test_out_of_range_pitch_is_named(pitch):
    with pytest.raises(ValueError, match=rf"pitch {pitch} .*\[48, 84\)"):
        MelodyOneHotEncoding().encode([60, NO, pitch])


def test_bad_labels_and_ranges():
    with pytest.raises(ValueError, match="label 38"):
        MelodyOneHotEncoding().decode([0, 38])
    with pytest.raises(ValueError):
        MelodyOneHotEncoding(60, 60)
    with pytest.raises(ValueError, match="invalid melody event -3"):
        MelodyOneHotEncoding().encode([-3])


def test_inputs_are_one_hot_and_training_pair_shifts_by_one():
    enc = MelodyOneHotEncoding()
    x = enc.inputs(C_MAJOR_SCALE)
    assert x.shape == (len(C_MAJOR_SCALE), 38) and x.dtype == np.float32
    assert (x.sum(axis=1) == 1).all()
    assert x.argmax(axis=1).tolist() == enc.encode(C_MAJOR_SCALE).tolist()
    inputs, labels = enc.training_pair(C_MAJOR_SCALE)
    assert inputs.shape == (len(C_MAJOR_SCALE) - 1, 38)
    # The first step (C4) is input only; the model's first target is the held NO_EVENT.
    assert labels[0] == 0 and inputs[0, 14] == 1.0
