"""The evaluate stage: likelihood of the test split (NLL per token, bits per token and per
note, against an n-gram baseline on the same tokens) and the samples measured against real
pieces (MusPy statistics, mgeval's relative metrics, memorization).

Samples and real pieces go through the same path: both are MIDI files read back by the
same readers, so neither side gets different timing or track handling.
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from tunelab.checkpoint import load_trained
from tunelab.corpora.download import write_json_atomic
from tunelab.datamodule import load_split, make_dataset, pad_collate
from tunelab.extract import load_melodies
from tunelab.metrics.muspy_metrics import muspy_statistics
from tunelab.metrics.novelty import CopyIndex, novelty
from tunelab.metrics.relative import relative_metrics
from tunelab.models.lm_module import summed_nll
from tunelab.models.ngram import fit_baseline
from tunelab.music.midi_io import read_midi, write_midi
from tunelab.music.score import Score, load_scores
from tunelab.paths import interim_dir, metrics_file, processed_dir, samples_dir
from tunelab.tokenize import MELODY_ENCODINGS, VAE_ENCODINGS, decode_to_score, prepare_melody

log = logging.getLogger(__name__)


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


def evaluate(cfg: DictConfig) -> dict:
    """Write reports/metrics/{model}-{corpus}.json for `dvc metrics show`."""
    if cfg.model.family == "jukebox":
        from tunelab.jukebox import evaluate_jukebox

        return evaluate_jukebox(cfg)
    net, encoding, name = load_trained(cfg)
    if cfg.model.family == "musenet":
        from tunelab.musenet import evaluate_musenet

        metrics = evaluate_musenet(cfg, net, encoding)
    elif cfg.model.family == "music_vae":
        from tunelab.music_vae import evaluate_music_vae

        metrics = evaluate_music_vae(cfg, net, encoding)
    else:
        metrics = evaluate_sequence_model(cfg, net, encoding, name)
    write_json_atomic(metrics_file(cfg), metrics)
    from tunelab.tracking import log_evaluation

    log_evaluation(cfg, metrics)
    return metrics


def evaluate_sequence_model(cfg: DictConfig, net: torch.nn.Module, encoding: Any, name: str) -> dict:
    """MelodyRNN, Music Transformer and the accompaniment model: token likelihood, an
    n-gram baseline, and the samples against the test pieces."""
    folder = processed_dir(cfg, name)
    metrics: dict = {"encoding": name}
    for split in ("valid", "test"):
        metrics[split] = test_nll(net, load_split(folder, split), encoding, cfg.model.seq_len, name=name)
    if cfg.model.family != "accompaniment":  # an n-gram over melody + parts would see the melody
        baseline = metrics["ngram_baseline"] = ngram_baseline(folder, len(encoding.vocab))
        metrics["beats_baseline"] = metrics["test"]["nll_per_step"] < baseline["nll_per_step"]
    if name in MELODY_ENCODINGS:
        test_scores = melody_test_scores(cfg, name)
    else:
        test_scores = [decode_to_score(name, encoding, seq, f"test-{i}")
                       for i, seq in enumerate(load_split(folder, "test"))]
    samples = sorted(samples_dir(cfg).glob("*.mid"))
    metrics.update(compare_with_real(cfg, samples, test_scores, training_pieces(cfg, name)))
    return metrics


def cross_corpus(cfg: DictConfig) -> dict:
    """The MusPy paper's cross-corpus matrix for one model: trained on corpus A (rows),
    test NLL per token and per note on corpus B (columns), same encoding
    -> reports/cross_corpus/{model}.json."""
    corpora = list(cfg.pipeline.corpora)
    name = cfg.model.encoding
    if name in VAE_ENCODINGS or cfg.model.get("corpora"):
        raise ValueError(f"model={cfg.model.name}: the cross-corpus matrix is for models trained per "
                         "corpus on token sequences")
    matrix: dict[str, dict[str, dict]] = {}
    for a in tqdm(corpora, desc="trained on", unit="corpus"):
        net, encoding, _ = load_trained(OmegaConf.merge(cfg, {"corpus": {"name": a}}))
        matrix[a] = {}
        for b in corpora:
            vocab = (processed_dir(cfg, name, corpus=b) / "vocab.json").read_text()
            if vocab != (processed_dir(cfg, name, corpus=a) / "vocab.json").read_text():
                raise ValueError(f"{name}: corpora {a} and {b} have different vocabularies; "
                                 "their NLLs do not compare")
            r = test_nll(net, load_split(processed_dir(cfg, name, corpus=b), "test"), encoding,
                         cfg.model.seq_len, name=name)
            matrix[a][b] = {k: r[k] for k in ("nll_per_step", "bits_per_step", "bits_per_note", "steps")}
    out = {"model": cfg.model.name, "encoding": name, "corpora": corpora, "matrix": matrix}
    path = Path(cfg.paths.reports) / "cross_corpus" / f"{cfg.model.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out)
    return out
