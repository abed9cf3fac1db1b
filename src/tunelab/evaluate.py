"""The evaluate stage: validation and test NLL of the model, an n-gram baseline on the same
tokens, and pitch statistics of samples vs the test pieces.

Pitch statistics are MusPy's (Dong et al. 2020) computed on MIDI read back with MusPy, so
samples and real pieces go through the same reader.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from pathlib import Path

import muspy
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.checkpoint import load_trained
from tunelab.corpora.download import write_json_atomic
from tunelab.datamodule import load_split, make_dataset, pad_collate
from tunelab.extract import load_melodies
from tunelab.models.lm_module import summed_nll
from tunelab.models.ngram import fit_baseline
from tunelab.music.midi_io import write_midi
from tunelab.paths import interim_dir, metrics_file, processed_dir, samples_dir
from tunelab.tokenize import MELODY_ENCODINGS, decode_to_score, prepare_melody

PITCH_METRICS = {
    "pitch_range": muspy.pitch_range,
    "n_pitch_classes_used": muspy.n_pitch_classes_used,
    "pitch_entropy": muspy.pitch_entropy,  # over the 128 pitches, in bits
    "pitch_class_entropy": muspy.pitch_class_entropy,  # over the 12 pitch classes, in bits
    "scale_consistency": muspy.scale_consistency,
}


def pitch_statistics(midi_files: list[Path]) -> dict[str, float]:
    """Mean of each MusPy pitch metric over files; NaN values (empty files) are left out."""
    values: dict[str, list[float]] = {k: [] for k in PITCH_METRICS}
    for f in midi_files:
        music = muspy.read_midi(f)
        for name, fn in PITCH_METRICS.items():
            v = float(fn(music))
            if not math.isnan(v):
                values[name].append(v)
    return {k: (statistics.fmean(v) if v else float("nan")) for k, v in values.items()}


@torch.no_grad()
def test_nll(net: torch.nn.Module, sequences, encoding, window: int | None = None,
             batch_size: int = 32) -> dict[str, float]:
    """Mean NLL per predicted step (token) over whole sequences, in nats and bits;
    Transformers read them in consecutive ``window``-long pieces (their training length)."""
    net.eval()
    ds = make_dataset(net, encoding, sequences, window, train=False)
    total, steps = 0.0, 0
    for start in tqdm(range(0, len(ds), batch_size), desc="test NLL", unit="batch", leave=False):
        batch = pad_collate([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
        t, n = summed_nll(net, batch)
        total, steps = total + t, steps + n
    nll = total / max(steps, 1)
    return {"nll_per_step": nll, "bits_per_step": nll / math.log(2), "perplexity": math.exp(nll),
            "steps": steps, "sequences": len(sequences), "windows": len(ds)}


def ngram_baseline(folder: Path, vocab_size: int) -> dict[str, float]:
    """Test NLL per step of the best bigram/trigram (add-k, tuned on valid), same split."""
    model = fit_baseline(load_split(folder, "train"), load_split(folder, "valid"), vocab_size)
    total, steps = model.nll(load_split(folder, "test"))
    nll = total / max(steps, 1)
    return {"order": model.order, "k": model.k, "nll_per_step": nll, "bits_per_step": nll / math.log(2),
            "steps": steps}


def evaluate(cfg: DictConfig) -> dict:
    """Write reports/metrics/{model}-{corpus}.json for `dvc metrics show`."""
    net, encoding, name = load_trained(cfg)
    if cfg.model.family == "musenet":
        from tunelab.musenet import evaluate_musenet

        return evaluate_musenet(cfg, net, encoding)
    if cfg.model.family == "music_vae":
        from tunelab.music_vae import evaluate_music_vae

        return evaluate_music_vae(cfg, net, encoding)
    folder = processed_dir(cfg, name)
    metrics: dict = {"encoding": name,
                     **{split: test_nll(net, load_split(folder, split), encoding, cfg.model.seq_len)
                        for split in ("valid", "test")}}
    if cfg.model.family != "accompaniment":  # an n-gram over melody + parts would see the melody
        baseline = metrics["ngram_baseline"] = ngram_baseline(folder, len(encoding.vocab))
        metrics["beats_baseline"] = metrics["test"]["nll_per_step"] < baseline["nll_per_step"]
    samples = sorted(samples_dir(cfg).glob("*.mid"))
    if not samples:
        raise FileNotFoundError(f"{samples_dir(cfg)} has no MIDI: run the sample stage first")
    metrics["samples"] = {"count": len(samples), **pitch_statistics(samples)}
    # The test pieces as the model sees them (melodies squashed into its range) beside the samples.
    if name in MELODY_ENCODINGS:
        melodies = load_melodies(interim_dir(cfg) / "melodies.jsonl.gz")
        test_scores = [prepare_melody(m, name, cfg.squash.transpose_to_key).to_score()
                       for m, split in melodies if split == "test"]
    else:
        test_scores = [decode_to_score(name, encoding, seq, f"test-{i}")
                       for i, seq in enumerate(load_split(folder, "test"))]
    with tempfile.TemporaryDirectory() as tmp:
        files = [write_midi(s, Path(tmp) / f"{i}.mid") for i, s in enumerate(test_scores)]
        metrics["test_pieces"] = {"count": len(files), **pitch_statistics(files)}
    write_json_atomic(metrics_file(cfg), metrics)
    return metrics
