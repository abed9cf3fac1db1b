"""What users do with a trained MusicVAE: sample from the prior, interpolate between two
MIDI files in latent space, move a melody along an attribute vector -- and the evaluate
stage's reconstruction accuracy and ELBO (Roberts et al. 2018, Table 1).

Follows Magenta's ``TrainedModel`` (magenta/models/music_vae/trained_model.py):
interpolation encodes both ends to their posterior means and decodes spherical
interpolations (slerp) between them; attribute vectors are the mean latent code of
high-attribute examples minus that of low ones (paper, section 5.3).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir
from tunelab.datamodule import LatentWindowDataset, load_split
from tunelab.encodings.music_vae import PIANO_MAX, PIANO_MIN, STEPS_PER_BAR, fit_window, track_line
from tunelab.models.components.music_vae import MusicVAE
from tunelab.models.vae_module import kl_divergence, reconstruction_nll
from tunelab.music.constants import MIN_MIDI_PITCH
from tunelab.music.melody import extract_melodies
from tunelab.music.midi_io import CorruptMidiError, read_midi, write_midi
from tunelab.music.score import Score
from tunelab.paths import processed_dir, samples_dir
from tunelab.plotting import write_piano_roll

log = logging.getLogger(__name__)

# Published Table 1 (Roberts et al. 2018): 16-bar melody reconstruction accuracy, their data.
PAPER_TABLE_1 = {"music_vae_mel_16bar_flat": {"teacher_forced": 0.883, "sampled": 0.620},
                 "music_vae_mel_16bar_hier": {"teacher_forced": 0.919, "sampled": 0.812}}


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1) (Shoemake 1985; Magenta's
    ``_slerp``); linear where the two are parallel."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-8:
        return (1.0 - t) * a + t * b
    return (np.sin((1.0 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


# --- reading user input -------------------------------------------------------------------

def input_windows(path: Path, encoding: Any, steps_per_quarter: int = 4) -> np.ndarray:
    """A MIDI file as the model's label windows ``(N, steps, parts)``: its first melody (or,
    for a trio, its first three pitched tracks as melody, bass, harmony), cut into windows
    or padded to one with a warning.

    Raises:
        ValueError: unreadable MIDI, no melody, fewer than three tracks for a trio, a pitch
            outside 21..108, or one bar or less.
    """
    path = Path(path)
    try:
        score = read_midi(path, steps_per_quarter)
    except (CorruptMidiError, OSError) as e:
        raise ValueError(f"{path}: {e}") from None
    if encoding.num_parts == 1:
        melodies, _ = extract_melodies(score, min_bars=1, max_steps_truncate=None, min_unique_pitches=1,
                                       gap_bars=1.0, ignore_polyphonic_notes=True, pad_end=True)
        if not melodies:
            raise ValueError(f"{path}: no melody found (no pitched track in a usable meter)")
        grid = np.asarray(melodies[0].events, dtype=np.int64)[:, None]
    else:
        grid = _trio_grid(path, score, encoding.num_parts)
    pitches = grid[grid >= MIN_MIDI_PITCH]
    if len(pitches) and (pitches.min() < PIANO_MIN or pitches.max() > PIANO_MAX):
        raise ValueError(f"{path}: pitches {pitches.min()}..{pitches.max()} leave the model's "
                         f"range {PIANO_MIN}..{PIANO_MAX}; transpose the file")
    try:
        windows, note = fit_window(grid, encoding.bars)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if note:
        log.warning("%s: %s", path, note)
    return encoding.windows(encoding.encode(windows))


def _trio_grid(path: Path, score: Score, parts: int) -> np.ndarray:
    tracks = [t for t in score.tracks if not t.is_drum and t.notes]
    if len(tracks) < parts:
        raise ValueError(f"{path}: a trio needs {parts} pitched tracks (melody, bass, harmony); "
                         f"it has {len(tracks)}")
    length = score.total_steps + (-score.total_steps) % STEPS_PER_BAR
    return np.stack([track_line(t, length) for t in tracks[:parts]], axis=1)


# --- latent operations ---------------------------------------------------------------------

@torch.no_grad()
def encode_means(net: MusicVAE, windows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Posterior means ``mu`` (N, z_size) of label windows."""
    net.eval()
    out = [net.encode(torch.as_tensor(windows[i:i + batch_size]))[0]
           for i in range(0, len(windows), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, net.z_size), dtype=np.float32)


@torch.no_grad()
def decode_latents(net: MusicVAE, z: np.ndarray, temperature: float, seed: int) -> np.ndarray:
    """Label windows (N, steps, parts) from latent codes; temperature 0 decodes greedily."""
    torch.manual_seed(seed)
    z_t = torch.as_tensor(np.asarray(z), dtype=torch.float32)
    return net.decode(z_t, temperature=max(temperature, 1e-6), greedy=temperature <= 0).numpy()


def _melody_events(encoding: Any, window: np.ndarray) -> np.ndarray:
    """The melody part's events of one label window."""
    return encoding.decode(window[None])[0, :, 0]


def note_density(events: np.ndarray) -> float:
    """Note onsets per step."""
    return float((events >= MIN_MIDI_PITCH).mean())


def pitch_range(events: np.ndarray) -> float:
    """Highest minus lowest pitch, in semitones (0 without notes)."""
    p = events[events >= MIN_MIDI_PITCH]
    return float(p.max() - p.min()) if len(p) else 0.0


def average_interval(events: np.ndarray) -> float:
    """Mean absolute interval between consecutive onsets, in semitones (0 below two notes)."""
    p = events[events >= MIN_MIDI_PITCH]
    return float(np.abs(np.diff(p)).mean()) if len(p) > 1 else 0.0


ATTRIBUTES: dict[str, Callable[[np.ndarray], float]] = {
    "note_density": note_density, "pitch_range": pitch_range, "average_interval": average_interval}


def attribute_vectors(net: MusicVAE, encoding: Any, windows: np.ndarray,
                      quantile: float = 0.25) -> dict[str, np.ndarray]:
    """Per attribute, mean ``mu`` of the windows in its top quantile minus the bottom one."""
    melodies = [_melody_events(encoding, w) for w in windows]
    values = {name: np.array([fn(m) for m in melodies]) for name, fn in ATTRIBUTES.items()}
    mu = encode_means(net, windows)
    vectors = {}
    for name, v in values.items():
        lo, hi = np.quantile(v, [quantile, 1 - quantile])
        low, high = mu[v <= lo], mu[v >= hi]
        if len(low) == 0 or len(high) == 0 or lo == hi:
            raise ValueError(f"attribute {name}: the training windows do not vary enough to split")
        vectors[name] = high.mean(0) - low.mean(0)
    return vectors


def training_windows(cfg: DictConfig, encoding: Any, limit: int = 4096) -> np.ndarray:
    """Up to ``limit`` training windows (label arrays), the first of each piece first."""
    pieces = [encoding.windows(s) for s in load_split(processed_dir(cfg, encoding.name), "train")]
    order = []  # round robin: every piece's k-th window before any piece's (k+1)-th
    for k in range(max((len(p) for p in pieces), default=0)):
        order += [p[k] for p in pieces if k < len(p)]
    if not order:
        return np.zeros((0, encoding.window_steps, encoding.num_parts), dtype=np.int64)
    return np.stack(order[:limit])


# --- writing output --------------------------------------------------------------------------

# --- the user's verbs ------------------------------------------------------------------------

def sample_music_vae(cfg: DictConfig, net: MusicVAE, encoding: Any) -> list[Path]:
    """The sample stage: ``sample.num_outputs`` windows decoded from z ~ N(0, I)."""
    s = cfg.sample
    rng = np.random.default_rng(cfg.seed)
    z = rng.standard_normal((s.num_outputs, net.z_size)).astype(np.float32)
    windows = decode_latents(net, z, 0.0 if s.greedy else s.temperature, cfg.seed)
    written = []
    with atomic_dir(samples_dir(cfg)) as out:
        for i, w in enumerate(windows):
            score = encoding.to_score(w, f"{cfg.model.name}-{cfg.corpus.name}-{i:02d}")
            written.append(write_midi(score, out / f"sample_{i:02d}.mid").name)
    log.info("decoded %d samples of %d bars from the prior", len(written), encoding.bars)
    return [samples_dir(cfg) / n for n in written]


def interpolate_windows(net: MusicVAE, ends: np.ndarray, steps: int, temperature: float,
                        seed: int) -> np.ndarray:
    """``steps`` windows decoded from slerps between the posterior means of two windows."""
    mu = encode_means(net, ends)
    z = np.stack([slerp(mu[0], mu[1], t) for t in np.linspace(0.0, 1.0, steps)])
    return decode_latents(net, z, temperature, seed)


def interpolate(cfg: DictConfig, net: MusicVAE, encoding: Any, start: Path, end: Path, steps: int,
                out: Path, temperature: float) -> tuple[Path, Path]:
    """Decode ``steps`` slerps between the posterior means of the first windows of two files
    into one MIDI (the windows one after another) and a piano-roll PNG beside it."""
    if steps < 2:
        raise ValueError(f"--steps {steps}: an interpolation needs at least 2 steps (the two ends)")
    ends = np.concatenate([input_windows(start, encoding, cfg.corpus.steps_per_quarter)[:1],
                           input_windows(end, encoding, cfg.corpus.steps_per_quarter)[:1]])
    windows = interpolate_windows(net, ends, steps, temperature, cfg.seed)
    score = encoding.to_score(windows, f"interpolation {start.stem} -> {end.stem}")
    midi = write_midi(score, out)
    title = f"{cfg.model.name}: {start.name} → {end.name}, {steps} steps"
    png = write_piano_roll(score, out.with_suffix(".png"), encoding.window_steps, title)
    return midi, png


def attribute(cfg: DictConfig, net: MusicVAE, encoding: Any, name: str, amount: float, source: Path,
              out: Path, temperature: float) -> tuple[Path, dict]:
    """Add ``amount`` times the attribute vector to each window's code of ``source`` and decode;
    returns the MIDI and the attribute's value before and after (means over windows)."""
    if name not in ATTRIBUTES:
        raise ValueError(f"--name {name}: choose one of {', '.join(ATTRIBUTES)}")
    windows = input_windows(source, encoding, cfg.corpus.steps_per_quarter)
    train = training_windows(cfg, encoding)
    if len(train) < 8:
        raise ValueError(f"{processed_dir(cfg, encoding.name)}: too few training windows for "
                         "attribute vectors; run the tokenize stage")
    vector = attribute_vectors(net, encoding, train)[name]
    z = encode_means(net, windows) + amount * vector
    decoded = decode_latents(net, z, temperature, cfg.seed)
    fn = ATTRIBUTES[name]
    change = {"attribute": name, "amount": amount,
              "before": float(np.mean([fn(_melody_events(encoding, w)) for w in windows])),
              "after": float(np.mean([fn(_melody_events(encoding, w)) for w in decoded]))}
    return write_midi(encoding.to_score(decoded, f"{source.stem} {name} {amount:+g}"), out), change


# --- evaluate stage ----------------------------------------------------------------------------

@torch.no_grad()
def reconstruction_metrics(net: MusicVAE, windows: torch.Tensor, seed: int = 0,
                           batch_size: int = 64) -> dict[str, float]:
    """Table 1's reconstruction accuracies and the ELBO on label windows (N, T, P).

    z is drawn from q(z|x) as in training. Teacher-forced accuracy: argmax of each step
    given the true previous events. Sampled accuracy: argmax of each step when the decoder
    is fed its own samples (temperature 1) instead -- Magenta's eval metric with sampling
    probability 1, the paper's "sampling" column; ``accuracy_sample_match`` is how often
    those fed-back samples themselves equal the targets. Greedy: the decoder fed its own
    argmax. Accuracies are over every step and part; ``accuracy_majority`` is that of
    always predicting the windows' most frequent class (the rest, NO_EVENT), the floor any
    decoder should beat.
    """
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    sums = {"teacher_forced": 0.0, "sampled": 0.0, "sample_match": 0.0, "greedy": 0.0, "nll": 0.0,
            "kl": 0.0}
    n = len(windows)
    for i in tqdm(range(0, n, batch_size), desc="reconstruct", unit="batch", leave=False):
        x = windows[i:i + batch_size]
        mu, sigma = net.encode(x)
        z = mu + sigma * torch.randn(mu.shape, generator=gen)
        logits = net.reconstruct(x, z)
        sums["teacher_forced"] += float((logits.argmax(-1) == x).float().mean(dim=(1, 2)).sum())
        # magenta/models/music_vae/lstm_models.py _flat_reconstruction_loss: accuracy of argmax(logits)
        sums["sampled"] += float((net.reconstruct(x, z, 1.0).argmax(-1) == x).float().mean(dim=(1, 2)).sum())
        sums["sample_match"] += float((net.decode(z, 1.0) == x).float().mean(dim=(1, 2)).sum())
        sums["greedy"] += float((net.decode(z, greedy=True) == x).float().mean(dim=(1, 2)).sum())
        sums["nll"] += float(reconstruction_nll(logits, x).sum())
        sums["kl"] += float(kl_divergence(mu, sigma).sum())
    steps = windows.shape[1] * windows.shape[2]
    majority = float(torch.bincount(windows.flatten()).max()) / max(windows.numel(), 1)
    elbo = -(sums["nll"] + sums["kl"]) / max(n, 1)
    return {"windows": n, "accuracy_teacher_forced": sums["teacher_forced"] / max(n, 1),
            "accuracy_sampled": sums["sampled"] / max(n, 1),
            "accuracy_sample_match": sums["sample_match"] / max(n, 1),
            "accuracy_greedy": sums["greedy"] / max(n, 1),
            "accuracy_majority": majority,
            "reconstruction_nll_per_window": sums["nll"] / max(n, 1),
            "kl_bits_per_window": sums["kl"] / max(n, 1) / math.log(2.0),
            "elbo_per_window": elbo, "nll_bound_per_step": -elbo / steps}


def evaluate_music_vae(cfg: DictConfig, net: MusicVAE, encoding: Any) -> dict:
    """reports/metrics/{model}-{corpus}.json: Table 1's metrics on valid and test windows
    (each piece's first 5, as Magenta evaluates), and the prior samples against the test
    windows (:func:`tunelab.families.sequence.compare_with_real`)."""
    from tunelab.families.sequence import compare_with_real, training_pieces

    folder = processed_dir(cfg, encoding.name)
    size = "CPU-sized" if cfg.trainer.accelerator == "cpu" else "GPU-sized"
    metrics: dict = {"encoding": encoding.name, "size": size}
    windows: dict[str, torch.Tensor] = {}
    for split in ("valid", "test"):
        ds = LatentWindowDataset(load_split(folder, split), encoding.window_steps, encoding.num_parts,
                                 random=False)
        if not len(ds):
            raise ValueError(f"{folder}: the {split} split has no windows; the corpus is too small "
                             f"for {encoding.name}")
        windows[split] = torch.stack([ds[k]["labels"] for k in range(len(ds))])
        metrics[split] = reconstruction_metrics(net, windows[split], cfg.seed)
    if cfg.model.name in PAPER_TABLE_1:
        metrics["paper_table_1"] = PAPER_TABLE_1[cfg.model.name]
    test_scores = [encoding.to_score(w.numpy(), f"test-{i}") for i, w in enumerate(windows["test"])]
    samples = sorted(samples_dir(cfg).glob("*.mid"))
    metrics.update(compare_with_real(cfg, samples, test_scores, training_pieces(cfg, encoding.name)))
    return metrics
