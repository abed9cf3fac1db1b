"""Vocab: ordered, frozen, JSON round trip; every encoding's vocab matches its class count."""

import dataclasses

import pytest

from tunelab.encodings import (
    Encoding,
    KeyMelodyEncoding,
    LookbackMelodyEncoding,
    MelodyOneHotEncoding,
    PerformanceEncoding,
    Vocab,
    VoiceGridEncoding,
)

ALL_ENCODINGS = [
    MelodyOneHotEncoding(),
    MelodyOneHotEncoding(0, 128),
    LookbackMelodyEncoding(),
    KeyMelodyEncoding(),
    PerformanceEncoding(),
    VoiceGridEncoding(),
]


def test_index_and_name_are_inverse():
    v = Vocab(("NO_EVENT", "NOTE_OFF", "NOTE_ON_60"))
    assert len(v) == 3
    assert [v.index(v.name(i)) for i in range(3)] == [0, 1, 2]
    assert v.index("NOTE_ON_60") == 2
    assert "NOTE_OFF" in v and "NOTE_ON_61" not in v
    with pytest.raises(KeyError, match="NOTE_ON_61"):
        v.index("NOTE_ON_61")
    with pytest.raises(IndexError):
        v.name(3)


def test_frozen_and_unique():
    v = Vocab.of(["a", "b"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.tokens = ("c",)
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(("a", "b", "a"))
    assert Vocab(("a", "b")) == v


def test_json_file_round_trip(tmp_path):
    v = PerformanceEncoding().vocab
    path = tmp_path / "vocab.json"
    text = v.to_json(path)
    assert Vocab.from_json(path) == v
    assert Vocab.from_json(str(path)) == v
    assert Vocab.from_json(text) == v


@pytest.mark.parametrize("enc", ALL_ENCODINGS, ids=lambda e: e.name)
def test_every_encoding_follows_the_protocol(enc):
    assert isinstance(enc, Encoding)
    assert isinstance(enc.name, str) and enc.name
    assert len(enc.vocab) == enc.num_classes


def test_encoding_names_are_distinct():
    names = [e.name for e in ALL_ENCODINGS]
    assert len(set(names)) == len(names)
