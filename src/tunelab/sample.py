"""The sample stage: generate melodies from a trained MelodyRNN and write MIDI."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.checkpoint import load_checkpoint
from tunelab.corpora.download import atomic_dir
from tunelab.music.constants import MELODY_NO_EVENT
from tunelab.music.melody import Melody, extract_melodies, squash
from tunelab.music.midi_io import read_midi, write_midi
from tunelab.paths import model_dir, samples_dir
from tunelab.tokenize import build_encoding

log = logging.getLogger(__name__)


def primer_events(cfg: DictConfig) -> tuple[int, ...]:
    """The primer as melody events: from a MIDI file (first melody, squashed) or pitches.

    A pitch list follows Magenta's ``--primer_melody``: one event per step, so [60] is a
    single 16th-note onset of middle C.
    """
    if cfg.sample.primer_midi:
        score = read_midi(cfg.sample.primer_midi, cfg.corpus.steps_per_quarter)
        mels, _ = extract_melodies(score, min_bars=1, min_unique_pitches=1, max_steps_truncate=None,
                                   ignore_polyphonic_notes=True)
        if not mels:
            raise ValueError(f"sample.primer_midi={cfg.sample.primer_midi}: no melody found in it")
        sq = cfg.extract.squash
        return squash(mels[0], sq.min_note, sq.max_note, sq.transpose_to_key).events
    return tuple(int(p) for p in cfg.sample.primer_pitches)


@torch.no_grad()
def generate(net: torch.nn.Module, encoding, primer: tuple[int, ...], num_steps: int,
             temperature: float, generator: torch.Generator) -> tuple[int, ...]:
    """Sample events after ``primer`` until ``num_steps`` events, keeping the LSTM state.

    The primer is fed once; each new step feeds only its own input row.
    """
    labels = list(encoding.encode(primer))
    events = tuple(primer)
    feats = torch.as_tensor(np.asarray(encoding.inputs(events)), dtype=torch.float32)[None]
    logits, state = net(feats)  # run the primer, keep the state
    while len(events) < num_steps:
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1)
        label = int(torch.multinomial(probs, 1, generator=generator))
        labels.append(label)
        events = tuple(encoding.decode(labels))
        row = np.asarray(encoding.inputs(events))[-1:]  # features of the newest step only
        logits, state = net(torch.as_tensor(row, dtype=torch.float32)[None], state)
    return events


def sample(cfg: DictConfig) -> list[Path]:
    """Write ``sample.num_outputs`` MIDI files to samples/{model}-{corpus}/."""
    net, payload = load_checkpoint(model_dir(cfg) / "model.ckpt", expect_model=cfg.model.name)
    encoding = build_encoding(payload["config"]["model"]["encoding"])
    if list(encoding.vocab.tokens) != payload["vocab"]:
        raise ValueError(f"{model_dir(cfg)}/model.ckpt was trained with another vocabulary; retrain")
    primer = primer_events(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    spq = cfg.corpus.steps_per_quarter
    written = []
    with atomic_dir(samples_dir(cfg)) as out:
        for i in tqdm(range(cfg.sample.num_outputs), desc="sample", unit="melody"):
            events = generate(net, encoding, primer, cfg.sample.num_steps, cfg.sample.temperature, gen)
            if all(e == MELODY_NO_EVENT for e in events):
                log.warning("sample %d is silent", i)
            mel = Melody(events, steps_per_bar=4 * spq, steps_per_quarter=spq,
                         piece_id=f"{cfg.model.name}-{cfg.corpus.name}-{i:02d}")
            written.append(write_midi(mel.to_score(), out / f"sample_{i:02d}.mid"))
    return [samples_dir(cfg) / p.name for p in written]
