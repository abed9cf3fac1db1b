"""Reversible token encodings of melodies, performances, voice grids, voice events (note-seq
faithful) and MuseNet-style multi-instrument events."""

from tunelab.encodings.key_melody import KeyMelodyEncoding
from tunelab.encodings.lookback import LookbackMelodyEncoding
from tunelab.encodings.melody_onehot import MelodyOneHotEncoding
from tunelab.encodings.musenet import (
    INSTRUMENTS,
    PROGRAM_OF,
    MuseNetEncoding,
    count_unison_cuts,
    instrument_of,
    to_musenet_grid,
)
from tunelab.encodings.music_vae import TRIO_PARTS, MusicVAEEncoding
from tunelab.encodings.performance import (
    PerformanceEncoding,
    PerformanceEvent,
    count_fifo_repairs,
    events_to_score,
    score_to_events,
    to_performance_grid,
)
from tunelab.encodings.vocab import Encoding, Vocab
from tunelab.encodings.voice_events import (
    VoiceEventsEncoding,
    score_to_voice_events,
    voice_events_to_score,
)
from tunelab.encodings.voice_grid import VoiceGridEncoding, grid_to_score, score_to_grid

__all__ = [
    "INSTRUMENTS",
    "PROGRAM_OF",
    "Encoding",
    "KeyMelodyEncoding",
    "LookbackMelodyEncoding",
    "MelodyOneHotEncoding",
    "MuseNetEncoding",
    "MusicVAEEncoding",
    "PerformanceEncoding",
    "PerformanceEvent",
    "TRIO_PARTS",
    "Vocab",
    "VoiceEventsEncoding",
    "VoiceGridEncoding",
    "count_fifo_repairs",
    "count_unison_cuts",
    "events_to_score",
    "grid_to_score",
    "instrument_of",
    "score_to_events",
    "score_to_grid",
    "score_to_voice_events",
    "to_musenet_grid",
    "to_performance_grid",
    "voice_events_to_score",
]
