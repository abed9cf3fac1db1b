"""decode(encode(x)) == x for every piece of every corpus, through the real stages.

Parses each whole corpus once (Bach takes ~30 s), so the failure counts reported by the
tokenize stage are what this asserts: zero everywhere.
"""

from __future__ import annotations

import pytest

from conftest import MIRROR, tiny_overrides
from tunelab.config import load_config
from tunelab.encodings.registry import MELODY_ENCODINGS
from tunelab.pipeline.extract import download, extract
from tunelab.pipeline.tokenize import tokenize

CASES = {
    "children": [*MELODY_ENCODINGS, "performance", "musenet"],
    "bach": [*MELODY_ENCODINGS, "performance", "voice_grid", "voice_events", "musenet"],
    "jazz": [*MELODY_ENCODINGS, "performance", "voice_events", "musenet"],
    "jsb": ["voice_grid", "voice_events", "melody_onehot", "melody_mono"],
}


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_every_piece_round_trips(corpus, tmp_path, mirror):
    cfg = load_config([*tiny_overrides(tmp_path), f"corpus={corpus}", f"corpus.mirror={MIRROR}"])
    download(cfg)
    stats = extract(cfg)
    assert stats["pieces"] > 0
    for encoding in CASES[corpus]:
        result = tokenize(cfg, encoding)
        assert result["roundtrip_failures"] == 0, (encoding, list(result["failures"].items())[:5])
        assert sum(result["sequences"].values()) > 0
