"""MuseNet's evaluation: NLL per style, the samples of each style against its real pieces,
and whether a style classifier trained on the real corpora hears the style asked for."""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig

from tunelab.families.musenet.style import style_adherence, train_style_classifier
from tunelab.families.sequence import (
    compare_with_real,
    ngram_baseline,
    scored_split,
    test_nll,
    training_pieces,
)
from tunelab.music.midi_io import read_midi
from tunelab.music.score import load_scores
from tunelab.paths import interim_dir, processed_dir, samples_dir, training_corpora


def evaluate_musenet(cfg: DictConfig, net: torch.nn.Module, encoding: object) -> dict:
    """Per-style valid/test NLL beside a per-style n-gram baseline, pitch statistics of samples
    and test pieces, and style adherence -> reports/metrics/musenet-joint.json."""
    metrics: dict = {"encoding": "musenet", "styles": {}}
    real = {c: load_scores(interim_dir(cfg, c) / "scores.jsonl.gz") for c in training_corpora(cfg)}
    samples = {c: sorted(samples_dir(cfg).glob(f"{c}_*.mid")) for c in real}
    for c in real:
        folder = processed_dir(cfg, "musenet", corpus=c)
        metrics["styles"][c] = {split: test_nll(net, scored_split(folder, split), encoding, cfg.model.seq_len,
                                                name="musenet") for split in ("valid", "test")}
        # The floor a style-conditioned model has to clear: an n-gram fitted to this style alone.
        style = metrics["styles"][c]
        ngram = style["ngram_baseline"] = ngram_baseline(folder, len(encoding.vocab))
        style["beats_baseline"] = style["test"]["nll_per_step"] < ngram["nll_per_step"]
        test_scores = [s for s in real[c] if s.meta.get("split") == "test"]
        metrics["styles"][c].update(
            compare_with_real(cfg, samples[c], test_scores, training_pieces(cfg, "musenet", corpus=c)))
    for split in ("valid", "test"):
        per = [metrics["styles"][c][split] for c in real]
        steps = sum(p["steps"] for p in per)
        nll = sum(p["nll_per_step"] * p["steps"] for p in per) / max(steps, 1)
        notes = sum(p["notes"] for p in per)
        metrics[split] = {"nll_per_step": nll, "bits_per_step": nll / math.log(2), "steps": steps,
                          "bits_per_note": nll * steps / math.log(2) / max(notes, 1), "notes": notes}
    classifier, report = train_style_classifier(real)
    spq = cfg.corpus.steps_per_quarter
    generated = {c: [read_midi(p, spq) for p in files] for c, files in samples.items()}
    metrics["style_classifier"] = report
    metrics["style_adherence"] = style_adherence(classifier, generated)
    return metrics
