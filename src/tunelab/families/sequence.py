"""What the token-sequence families share (MelodyRNN, Music Transformer, Performance RNN,
MuseNet): likelihood of a split against an n-gram baseline, the samples measured against
real pieces, primers, and sampling a token model with its key/value cache.

Samples and real pieces go through the same path: both are MIDI files read back by the
same readers, so neither side gets different timing or track handling.
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir
from tunelab.datamodule import load_split, make_dataset, pad_collate
from tunelab.encodings.registry import MELODY_ENCODINGS, MELODY_RANGE, decode_to_score, prepare_melody
from tunelab.errors import ConfigError
from tunelab.metrics.muspy_metrics import muspy_statistics
from tunelab.metrics.novelty import CopyIndex, novelty
from tunelab.metrics.relative import relative_metrics
from tunelab.models.components.sampling import generate
from tunelab.models.lm_module import summed_nll
from tunelab.models.ngram import fit_baseline
from tunelab.music.constants import MELODY_NO_EVENT, MELODY_NOTE_OFF
from tunelab.music.melody import Melody, extract_melodies, load_melodies
from tunelab.music.midi_io import CorruptMidiError, read_midi, write_midi
from tunelab.music.score import Score, load_scores
from tunelab.paths import interim_dir, processed_dir, samples_dir

log = logging.getLogger(__name__)


# --- likelihood and the samples against real music -------------------------------------------

@torch.no_grad()
def test_nll(net: torch.nn.Module, sequences, encoding, window: int | None = None,
             batch_size: int = 32, name: str | None = None) -> dict[str, float]:
    """Mean NLL per predicted step (token) over whole sequences, in nats and bits;
    Transformers read them in consecutive ``window``-long pieces (their training length).
    With the encoding's ``name`` also bits per note: the same total over the notes the
    sequences decode to, which compares encodings that spend different tokens per note."""
    net.eval()
    ds = make_dataset(net, encoding, sequences, window, train=False)
    total, steps = 0.0, 0
    for start in tqdm(range(0, len(ds), batch_size), desc="test NLL", unit="batch", leave=False):
        batch = pad_collate([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
        t, n = summed_nll(net, batch)
        total, steps = total + t, steps + n
    nll = total / max(steps, 1)
    out = {"nll_per_step": nll, "bits_per_step": nll / math.log(2), "perplexity": math.exp(nll),
           "steps": steps, "sequences": len(sequences), "windows": len(ds)}
    if name is not None:
        notes = sum(decode_to_score(name, encoding, s).num_notes for s in sequences)
        out["notes"] = notes
        out["bits_per_note"] = total / math.log(2) / notes if notes else math.nan
    return out


def scored_split(folder: Path, split: str) -> Sequence[np.ndarray]:
    """The sequences of a split that a score is computed over.

    Raises:
        ValueError: the split is empty (a small corpus whose pieces all hashed elsewhere, or
            had no melody): a score over nothing would read as a perfect model.
    """
    seqs = load_split(folder, split)
    if not seqs:
        raise ValueError(f"{folder}: the {split} split holds no pieces, so there is nothing to score: "
                         f"add pieces to the corpus or raise split.{split}")
    return seqs


def ngram_baseline(folder: Path, vocab_size: int) -> dict[str, float]:
    """Test NLL per step of the best bigram/trigram (add-k, tuned on valid), same split."""
    model = fit_baseline(load_split(folder, "train"), load_split(folder, "valid"), vocab_size)
    total, steps = model.nll(load_split(folder, "test"))
    nll = total / max(steps, 1)
    return {"order": model.order, "k": model.k, "nll_per_step": nll, "bits_per_step": nll / math.log(2),
            "steps": steps}


def training_pieces(cfg: DictConfig, encoding: str, corpus: str | None = None) -> list[Score]:
    """What a model's samples could have memorized: the training melodies for one-line
    models, else the training split's whole scores."""
    folder = interim_dir(cfg, corpus)
    if encoding in MELODY_ENCODINGS or encoding.startswith("mel_"):
        return [m.to_score() for m, split in load_melodies(folder / "melodies.jsonl.gz") if split == "train"]
    return [s for s in load_scores(folder / "scores.jsonl.gz") if s.meta.get("split") == "train"]


def compare_with_real(cfg: DictConfig, sample_files: list[Path], test_scores: list[Score],
                      training: list[Score] | CopyIndex) -> dict[str, Any]:
    """The samples against real music: MusPy statistics of both sides, mgeval's relative
    metrics against (at most ``evaluate.max_reference_pieces``) test pieces, and the share
    of samples that copy ``evaluate.novelty_bars`` bars of a training piece."""
    if not sample_files:
        raise FileNotFoundError(f"{samples_dir(cfg)} has no MIDI: run the sample stage first")
    spq = cfg.corpus.steps_per_quarter
    samples = [read_midi(p, spq) for p in sample_files]
    out: dict[str, Any] = {"samples": {"count": len(sample_files), **muspy_statistics(sample_files, spq)}}
    with tempfile.TemporaryDirectory() as tmp:
        files = [write_midi(s, Path(tmp) / f"{i}.mid") for i, s in enumerate(test_scores)]
        out["test_pieces"] = {"count": len(files), **muspy_statistics(files, spq)}
        # The reference set goes through MIDI too, like the samples.
        reference = [read_midi(f, spq) for f in files]
    cap = cfg.evaluate.max_reference_pieces
    if len(reference) > cap:  # a fixed subset: the same seed, the same reference
        reference = random.Random(cfg.seed).sample(reference, cap)
    try:
        out["relative"] = relative_metrics(samples, reference)
    except ValueError as e:  # fewer than two non-empty pieces on a side
        log.warning("relative metrics skipped: %s", e)
        out["relative"] = {"skipped": str(e)}
    out["novelty"] = novelty(samples, training, bars=cfg.evaluate.novelty_bars)
    return out


def melody_test_scores(cfg: DictConfig, name: str) -> list[Score]:
    """The test melodies as the model sees them (squashed into its range)."""
    melodies = load_melodies(interim_dir(cfg) / "melodies.jsonl.gz")
    return [prepare_melody(m, name, cfg.squash.transpose_to_key).to_score()
            for m, split in melodies if split == "test"]


def evaluate_sequence_model(cfg: DictConfig, net: torch.nn.Module, encoding: Any, name: str,
                            baseline: bool = True) -> dict:
    """Token likelihood of the valid and test splits, an n-gram baseline on the same tokens
    (unless ``baseline`` is off: an n-gram over melody + parts would see the melody), and the
    samples against the test pieces."""
    folder = processed_dir(cfg, name)
    metrics: dict = {"encoding": name}
    for split in ("valid", "test"):
        metrics[split] = test_nll(net, scored_split(folder, split), encoding, cfg.model.seq_len, name=name)
    if baseline:
        ngram = metrics["ngram_baseline"] = ngram_baseline(folder, len(encoding.vocab))
        metrics["beats_baseline"] = metrics["test"]["nll_per_step"] < ngram["nll_per_step"]
    if name in MELODY_ENCODINGS:
        test_scores = melody_test_scores(cfg, name)
    else:
        test_scores = [decode_to_score(name, encoding, seq, f"test-{i}")
                       for i, seq in enumerate(load_split(folder, "test"))]
    samples = sorted(samples_dir(cfg).glob("*.mid"))
    metrics.update(compare_with_real(cfg, samples, test_scores, training_pieces(cfg, name)))
    return metrics



# --- primers and token sampling ------------------------------------------------------------

def read_primer(cfg: DictConfig) -> Score:
    """``sample.primer_midi`` as a score on the corpus grid.

    Raises:
        ConfigError: the file is missing or not readable MIDI.
    """
    path = Path(cfg.sample.primer_midi)
    try:
        return read_midi(path, cfg.corpus.steps_per_quarter)
    except (CorruptMidiError, OSError) as e:
        raise ConfigError(f"sample.primer_midi={path}: {e}") from None


def primer_melody(cfg: DictConfig, encoding_name: str, steps_per_bar: int) -> Melody:
    """The primer, in the model's range: a MIDI file's first melody (squashed, its
    transposition kept for undoing) or ``sample.primer_pitches`` as events, one per step.

    Raises:
        ConfigError: the primer file is missing, not MIDI or has no melody, or a primer
            pitch is outside the range.
    """
    lo, hi = MELODY_RANGE[encoding_name]
    if cfg.sample.primer_midi:
        path = Path(cfg.sample.primer_midi)
        score = read_primer(cfg)
        mels, _ = extract_melodies(score, min_bars=0, min_unique_pitches=1, max_steps_truncate=None,
                                   ignore_polyphonic_notes=True)
        if not mels:
            raise ConfigError(f"sample.primer_midi={path}: no melody in it (drums or empty)")
        mel = prepare_melody(mels[0], encoding_name, cfg.squash.transpose_to_key)
        if mel.transpose:
            log.warning("primer %s transposed by %+d semitones into the model's key and range "
                        "%d..%d; the output is transposed back", path, mel.transpose, lo, hi - 1)
        return replace(mel, steps_per_bar=steps_per_bar, start_step=0)
    events = tuple(int(p) for p in cfg.sample.primer_pitches)
    for p in events:
        if p not in (MELODY_NO_EVENT, MELODY_NOTE_OFF) and not lo <= p < hi:
            raise ConfigError(f"sample.primer_pitches: pitch {p} is outside the model's range "
                              f"{lo}..{hi - 1}; transpose it or use sample.primer_midi")
    if not events or events[0] < 0:
        raise ConfigError("sample.primer_pitches must start with a pitch")
    return Melody(events, steps_per_bar=steps_per_bar, steps_per_quarter=cfg.corpus.steps_per_quarter)


def primer_tokens(cfg: DictConfig, encoding: Any, name: str) -> np.ndarray:
    """Token ids a token model continues: melody encodings as :func:`primer_melody`, a
    performance from ``sample.primer_midi`` (all its tracks), else none (from scratch).

    Raises:
        ConfigError: the primer file is unreadable, or a primer MIDI for a grid encoding.
    """
    if name in MELODY_ENCODINGS:
        return np.asarray(encoding.encode(primer_melody(cfg, name, 4 * cfg.corpus.steps_per_quarter).events))
    if not cfg.sample.primer_midi:
        return np.zeros(0, dtype=np.int64)
    path = Path(cfg.sample.primer_midi)
    if name != "performance":
        raise ConfigError(f"sample.primer_midi={path}: priming a {name} model from MIDI is not "
                          "supported; use a performance or melody model")
    return np.asarray(encoding.encode(read_primer(cfg)))


def sample_tokens(cfg: DictConfig, net: torch.nn.Module, encoding: Any, name: str) -> list[Path]:
    """Generate ``sample.num_outputs`` pieces of ``sample.num_tokens`` new tokens in one
    batch; the primer's tokens are kept verbatim at the start of each."""
    s = cfg.sample
    primer = primer_tokens(cfg, encoding, name)
    prompt = torch.tensor([[net.bos, *primer.tolist()]]).repeat(s.num_outputs, 1)
    gen = torch.Generator().manual_seed(cfg.seed)
    log.info("generating %d x %d tokens after a %d-token primer", s.num_outputs, s.num_tokens, len(primer))
    tokens = generate(net, prompt, s.num_tokens, new_cache=net.new_cache, temperature=s.temperature,
                      top_k=s.top_k, top_p=s.top_p, greedy=s.greedy, generator=gen, progress=True)
    written = []
    with atomic_dir(samples_dir(cfg)) as out:
        for i, row in enumerate(tokens[:, 1:].numpy()):
            score = decode_to_score(name, encoding, row, f"{cfg.model.name}-{cfg.corpus.name}-{i:02d}")
            written.append(write_midi(score, out / f"sample_{i:02d}.mid"))
    return [samples_dir(cfg) / p.name for p in written]
