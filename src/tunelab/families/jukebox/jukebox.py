"""Jukebox (Dhariwal et al. 2020), reduced to CPU size, on rendered audio of the corpora:
train the VQ-VAE and the priors, generate audio (top-level codes -> upsampled codes ->
waveform), and measure it.

One joint model over every corpus in ``styles``; the style (corpus) conditions the priors.
Files: models/{jukebox_vqvae,jukebox_prior,jukebox_upsampler}-joint/,
samples/jukebox-joint/{style}_XX.wav and generation.json, reports/metrics/jukebox-joint.json.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import soundfile as sf
import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset
from tqdm import tqdm

from tunelab.atomic import atomic_dir, write_json_atomic
from tunelab.checkpoint import load_checkpoint
from tunelab.errors import ConfigError
from tunelab.families.jukebox.audio_corpus import (
    audio_dir,
    consecutive_windows,
    load_audio_split,
    random_windows,
    read_mono,
)
from tunelab.families.jukebox.audio_corpus import audio_rate as corpus_rate
from tunelab.models.components.sampling import generate
from tunelab.paths import samples_dir

log = logging.getLogger(__name__)
EVAL_WINDOWS = 64  # test windows per style for the VQ-VAE's reconstruction metrics


def styles(cfg: DictConfig) -> list[str]:
    return list(cfg.model.corpora)


def load_pieces(cfg: DictConfig, split: str) -> list[tuple[int, str, np.ndarray]]:
    """(style index, piece id, mono float32 audio) of every style's ``split``."""
    out = []
    for k, corpus in enumerate(styles(cfg)):
        out += [(k, pid, audio) for pid, audio in load_audio_split(audio_dir(cfg, corpus), split)]
    if not out:
        raise ValueError(f"no {split} audio for styles {styles(cfg)}")
    return out


def model_path(cfg: DictConfig, name: str) -> Path:
    return Path(cfg.paths.models) / f"{name}-joint" / "model.ckpt"


def load_part(cfg: DictConfig, name: str) -> tuple[torch.nn.Module, dict]:
    """A trained part of the Jukebox (VQ-VAE, prior or upsampler), on CPU, in eval mode,
    and the model config it was trained with."""
    net, payload = load_checkpoint(model_path(cfg, name), expect_model=name)
    conf = payload["config"]["model"]
    if conf["corpora"] != styles(cfg):
        raise ConfigError(f"{model_path(cfg, name)} was trained on styles {conf['corpora']}, not "
                          f"{styles(cfg)}; retrain it or set `styles`")
    return net, conf


# --- datasets ------------------------------------------------------------------------------------

class AudioWindows(Dataset):
    """Fixed, seeded random windows of the training audio (a few per piece)."""

    def __init__(self, pieces: list[tuple[int, str, np.ndarray]], length: int, per_piece: int, seed: int):
        rng = np.random.default_rng(seed)
        self.windows = random_windows([a for _, _, a in pieces], length, len(pieces) * per_piece, rng)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict:
        return {"audio": torch.from_numpy(np.ascontiguousarray(self.windows[i], dtype=np.float32))}


class CodeWindows(Dataset):
    """Crops of ``length`` codes of one level (aligned crops of the level above for an
    upsampler), with BOS-shifted inputs, the labels and the style of the piece."""

    def __init__(self, codes: list[tuple[int, np.ndarray, np.ndarray | None]], length: int, bos: int,
                 upsample: int, per_piece: int, seed: int, random_crops: bool = True) -> None:
        rng = np.random.default_rng(seed)
        self.items = []
        for style, c, cond in codes:
            n = len(c) - length
            if n < 0:
                continue
            starts = (rng.integers(0, n // upsample + 1, per_piece) * upsample if random_crops
                      else np.arange(0, n + 1, length))
            self.items += [(style, c, cond, int(s)) for s in starts]
        self.length, self.bos, self.upsample = length, bos, upsample

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        style, c, cond, s = self.items[i]
        labels = torch.from_numpy(c[s:s + self.length].astype(np.int64))
        item = {"inputs": torch.cat([torch.tensor([self.bos]), labels[:-1]]), "labels": labels,
                "style": torch.tensor(style)}
        if cond is not None:
            a = s // self.upsample
            item["cond"] = torch.from_numpy(cond[a:a + self.length // self.upsample].astype(np.int64))
        return item


@torch.no_grad()
def encode_pieces(vqvae: torch.nn.Module, pieces: list[tuple[int, str, np.ndarray]], levels: list[int]
                  ) -> list[tuple[int, list[np.ndarray]]]:
    """Each piece's codes at ``levels`` (the audio cut to a multiple of the top hop)."""
    top = max(vqvae.hop_lengths)
    out = []
    for style, _, audio in tqdm(pieces, desc="encode", unit="piece", leave=False):
        n = len(audio) // top * top
        if n == 0:
            continue
        codes = vqvae.encode(torch.from_numpy(audio[:n].astype(np.float32))[None])
        out.append((style, [codes[k][0].numpy() for k in levels]))
    return out


def prior_datasets(cfg: DictConfig, net: torch.nn.Module) -> tuple[Dataset, Dataset]:
    vqvae, _ = load_part(cfg, cfg.model.vqvae)
    level, cond_level = cfg.model.level, cfg.model.get("cond_level")
    if net.num_classes != vqvae.codebook_size:
        raise ConfigError(f"model.net.codebook_size={net.num_classes} but {cfg.model.vqvae} has "
                          f"{vqvae.codebook_size} codes")
    upsample = 1
    if cond_level is not None:
        upsample = vqvae.hop_lengths[cond_level] // vqvae.hop_lengths[level]
        if net.upsample != upsample:
            raise ConfigError(f"model.net.upsample={net.upsample} but the VQ-VAE's hops give "
                              f"{upsample}")
    if cfg.model.seq_len % upsample:
        raise ConfigError(f"model.seq_len={cfg.model.seq_len} must be a multiple of the upsampling "
                          f"{upsample}")
    levels = [level] + ([cond_level] if cond_level is not None else [])
    sets = []
    for split, random_crops in (("train", True), ("valid", False)):
        coded = encode_pieces(vqvae, load_pieces(cfg, split), levels)
        codes = [(s, c[0], c[1] if len(c) > 1 else None) for s, c in coded]
        sets.append(CodeWindows(codes, cfg.model.seq_len, net.bos, upsample, 8, cfg.seed, random_crops))
    return sets[0], sets[1]


def training_setup(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule]:
    """The LightningModule and data of ``model.stage`` vqvae or prior (train stage)."""
    from tunelab.datamodule import DatasetsModule
    from tunelab.families.base import instantiate_section
    from tunelab.models.components.vqvae import calculate_bandwidth

    net = instantiate_section(cfg, "net")
    if cfg.model.stage == "vqvae":
        if cfg.model.seq_len % max(net.hop_lengths):
            raise ConfigError(f"model.seq_len={cfg.model.seq_len} must be a multiple of the top hop "
                              f"{max(net.hop_lengths)}")
        if audio_rate(cfg) != net.sample_rate:
            raise ConfigError(f"model.net.sample_rate={net.sample_rate} but the audio is at "
                              f"{audio_rate(cfg)} Hz")
        train = AudioWindows(load_pieces(cfg, "train"), cfg.model.seq_len, 4, cfg.seed)
        valid = AudioWindows(load_pieces(cfg, "valid"), cfg.model.seq_len, 1, cfg.seed + 1)
        # the losses' normalisers from the training audio, as Jukebox measures them up front
        bw = calculate_bandwidth(torch.from_numpy(train.windows[:256]))
        net.bandwidth_l2.fill_(max(bw["l2"], 1e-8))
        net.bandwidth_spec.fill_(max(bw["spec"], 1e-8))
        module: L.LightningModule = instantiate_section(cfg, "module")(
            net=net, optimizer=instantiate_section(cfg, "optimizer"))
    elif cfg.model.stage == "prior":
        train, valid = prior_datasets(cfg, net)
        module = instantiate_section(cfg, "module")(net=net, optimizer=instantiate_section(cfg, "optimizer"),
                                               no_event_label=None)
    else:
        raise ConfigError(f"model={cfg.model.name} is the assembled Jukebox (stage {cfg.model.stage}); "
                          "train model=jukebox_vqvae, jukebox_prior and jukebox_upsampler")
    if not len(train) or not len(valid):
        raise ValueError(f"{cfg.model.name}: no training or validation windows; render more audio "
                         "(audio.seconds_per_piece) or shorten model.seq_len")
    data = DatasetsModule(train, valid, cfg.model.batch_size)
    return module, data


def audio_rate(cfg: DictConfig) -> int:
    rates = {corpus_rate(audio_dir(cfg, c)) for c in styles(cfg)}
    if len(rates) != 1:
        raise ValueError(f"the styles' audio has different sample rates {sorted(rates)}; re-render it")
    return rates.pop()


# --- generation ----------------------------------------------------------------------------------

@torch.no_grad()
def sample_level(prior: torch.nn.Module, total: int, style: int, *, cond: torch.Tensor | None = None,
                 upsample: int = 1, context: int, prompt: np.ndarray | None = None,
                 temperature: float = 1.0, generator: torch.Generator | None = None) -> np.ndarray:
    """``total`` codes of one level, windowed as Jukebox samples long pieces: each window
    keeps the last half of the previous one as its prompt (aligned to the level above) and
    generates the rest with the key/value cache."""
    codes = [] if prompt is None else [int(c) for c in prompt]
    keep = max(context // 2 // upsample * upsample, upsample)
    style_t = torch.tensor([style])
    with tqdm(total=total, initial=min(len(codes), total), desc="sample codes", unit="code",
              leave=False) as bar:
        while len(codes) < total:
            start = max(0, len(codes) - keep) // upsample * upsample
            ctx = codes[start:]
            need = min(total - len(codes), context - len(ctx))
            window_cond = None
            if cond is not None:
                window_cond = cond[:, start // upsample:math.ceil((start + len(ctx) + need) / upsample)]
            prompt_t = torch.tensor([[prior.bos, *ctx]])
            out = generate(lambda t, c, wc=window_cond: prior(t, style_t, wc, c), prompt_t, need,
                           new_cache=prior.new_cache, temperature=temperature, generator=generator)
            codes += out[0, 1 + len(ctx):].tolist()
            bar.update(need)
    return np.asarray(codes[:total], dtype=np.int64)


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """A WAV/FLAC file as mono float32 at ``sample_rate`` (a primer)."""
    try:
        return read_mono(path, sample_rate).astype(np.float32)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise ConfigError(f"sample.primer_audio={path}: not a readable WAV/FLAC file ({e})") from None


@dataclass
class Level:
    """A trained prior and the VQ-VAE level whose codes it samples."""

    net: torch.nn.Module
    level: int
    context: int                  # its training window, in codes
    cond_level: int | None = None


@dataclass
class Jukebox:
    """The trained VQ-VAE and priors, coarsest first: the top-level prior, then each
    upsampler conditioned on the level before it."""

    vqvae: torch.nn.Module
    priors: list[Level]


def load_jukebox(cfg: DictConfig) -> Jukebox:
    vqvae, _ = load_part(cfg, cfg.model.vqvae)
    priors = []
    for name in [cfg.model.prior, *cfg.model.upsamplers]:
        net, conf = load_part(cfg, name)
        priors.append(Level(net, conf["level"], conf["seq_len"], conf.get("cond_level")))
    for above, below in zip(priors, priors[1:], strict=False):
        if below.cond_level != above.level:
            raise ConfigError(f"an upsampler of level {below.level} is conditioned on level "
                              f"{below.cond_level}, but the model before it samples level {above.level}")
    if priors[0].cond_level is not None:
        raise ConfigError(f"{cfg.model.prior} is an upsampler; model.prior must be the top-level prior")
    return Jukebox(vqvae, priors)


@torch.no_grad()
def generate_audio(cfg: DictConfig, jb: Jukebox, style: int, seconds: float, primer: np.ndarray | None,
                   generator: torch.Generator) -> np.ndarray:
    """Top codes -> each upsampler's codes -> waveform from the finest level sampled; with a
    primer, its codes start every level and the output is the primer (as the VQ-VAE decodes
    it) followed by ``seconds``."""
    hops = jb.vqvae.hop_lengths
    top_hop = hops[jb.priors[0].level]
    prompts: dict[int, np.ndarray] = {}
    primed = 0
    if primer is not None:
        n = len(primer) // top_hop * top_hop
        if n == 0:
            raise ConfigError(f"sample.primer_audio is shorter than one top-level code ({top_hop} samples)")
        codes = jb.vqvae.encode(torch.from_numpy(primer[:n])[None])
        prompts = {p.level: codes[p.level][0].numpy() for p in jb.priors}
        primed = n // top_hop
    total = primed + math.ceil(seconds * jb.vqvae.sample_rate / top_hop)
    above: np.ndarray | None = None
    for p in jb.priors:
        ratio = 1 if above is None else hops[p.cond_level] // hops[p.level]
        cond = None if above is None else torch.from_numpy(above)[None]
        above = sample_level(p.net, total * top_hop // hops[p.level], style, cond=cond, upsample=ratio,
                             context=p.context, prompt=prompts.get(p.level),
                             temperature=cfg.sample.temperature, generator=generator)
    audio = jb.vqvae.decode(torch.from_numpy(above)[None], jb.priors[-1].level)[0].numpy()
    # whole top-level codes cover a little more than asked; cut to the exact length
    return audio[:primed * top_hop + round(seconds * jb.vqvae.sample_rate)]


def write_wav(audio: np.ndarray, path: Path, sample_rate: int) -> Path:
    """Mono 16-bit PCM, clipped to [-1, 1]."""
    sf.write(str(path), np.clip(audio, -1, 1), sample_rate, subtype="PCM_16", format="WAV")
    return path


def sample_jukebox(cfg: DictConfig) -> list[Path]:
    """The sample stage / ``tunelab generate model=jukebox``: ``sample.num_outputs`` WAVs per
    style (``style=`` for one) -> samples/jukebox-joint/, with generation.json (compute time,
    real-time factor)."""
    jb = load_jukebox(cfg)
    vqvae = jb.vqvae
    names = styles(cfg)
    chosen = [cfg.style] if cfg.style else names
    for s in chosen:
        if s not in names:
            raise ConfigError(f"style={s} is not one of the model's styles {names}")
    primer = read_audio(Path(cfg.sample.primer_audio), vqvae.sample_rate) if cfg.sample.primer_audio else None
    gen = torch.Generator().manual_seed(cfg.seed)
    timing: dict[str, Any] = {"seconds_requested": cfg.seconds, "device": "cpu", "samples": {}}
    with atomic_dir(samples_dir(cfg)) as out:
        for s in chosen:
            for i in range(cfg.sample.num_outputs):
                t0 = time.perf_counter()
                audio = generate_audio(cfg, jb, names.index(s), cfg.seconds, primer, gen)
                took = time.perf_counter() - t0
                name = f"{s}_{i:02d}.wav"
                write_wav(audio, out / name, vqvae.sample_rate)
                seconds = len(audio) / vqvae.sample_rate
                timing["samples"][name] = {"seconds": seconds, "compute_seconds": took,
                                           "real_time_factor": took / cfg.seconds}
                log.info("%s: %.2f s of audio in %.1f s (%.1fx real time)", name, seconds, took,
                         took / cfg.seconds)
        rtf = [v["real_time_factor"] for v in timing["samples"].values()]
        timing["real_time_factor"] = float(np.mean(rtf))
        write_json_atomic(out / "generation.json", timing)
    return sorted(samples_dir(cfg).glob("*.wav"))


# --- evaluation ----------------------------------------------------------------------------------

@torch.no_grad()
def prior_bits_per_code(cfg: DictConfig, name: str, vqvae) -> dict[str, float]:
    """Test NLL of a prior in bits per code, over consecutive windows of the test codes."""
    from tunelab.models.lm_module import summed_nll

    net, conf = load_part(cfg, name)
    level, cond_level = conf["level"], conf.get("cond_level")
    levels = [level] + ([cond_level] if cond_level is not None else [])
    coded = encode_pieces(vqvae, load_pieces(cfg, "test"), levels)
    upsample = net.upsample if cond_level is not None else 1
    ds = CodeWindows([(s, c[0], c[1] if len(c) > 1 else None) for s, c in coded], conf["seq_len"], net.bos,
                     upsample, 0, cfg.seed, random_crops=False)
    total, n = 0.0, 0
    for start in range(0, len(ds), 16):
        items = [ds[i] for i in range(start, min(start + 16, len(ds)))]
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        t, m = summed_nll(net, batch)
        total, n = total + t, n + m
    return {"level": level, "hop": vqvae.hop_lengths[level], "windows": len(ds), "codes": n,
            "bits_per_code": total / max(n, 1) / math.log(2)}


@torch.no_grad()
def evaluate_jukebox(cfg: DictConfig) -> dict:
    """reports/metrics/jukebox-joint.json: the VQ-VAE's reconstructions and codebook use,
    each prior's test bits per code, and the samples against real audio of their style."""
    from tunelab.metrics.audio_metrics import (
        chroma_histogram,
        chroma_kl,
        codebook_usage,
        long_term_spectrum_distance,
        multi_resolution_stft_distance,
        spectral_convergence,
    )

    vqvae, vqvae_conf = load_part(cfg, cfg.model.vqvae)
    sr, hops = vqvae.sample_rate, vqvae.hop_lengths
    window = vqvae_conf["seq_len"]
    test = load_pieces(cfg, "test")
    names = styles(cfg)
    metrics: dict[str, Any] = {"sample_rate": sr, "hop_lengths": list(hops), "vqvae": {}, "priors": {},
                               "styles": {}}
    windows = {k: consecutive_windows([a for s, _, a in test if s == k], window)[:EVAL_WINDOWS]
               for k in range(len(names))}
    refs = np.concatenate([w for w in windows.values() if len(w)])
    for level in range(len(hops)):
        codes = vqvae.encode(torch.from_numpy(refs.astype(np.float32)))[level]
        est = vqvae.decode(codes, level).numpy()
        # over all windows at once: a silent window alone has no spectrum to converge to
        metrics["vqvae"][f"level_{level}"] = {
            "hop": hops[level], "windows": len(refs), "spectral_convergence": spectral_convergence(refs, est),
            "multi_resolution_stft_distance": multi_resolution_stft_distance(refs, est),
            **codebook_usage(codes.numpy().ravel(), vqvae.codebook_size)}
    for name in [cfg.model.prior, *cfg.model.upsamplers]:
        metrics["priors"][name] = prior_bits_per_code(cfg, name, vqvae)
    folder = samples_dir(cfg)
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise FileNotFoundError(f"{folder} has no WAV: run `tunelab sample model=jukebox` first")
    real_audio = {k: np.concatenate([a for s, _, a in test if s == k]) for k in range(len(names))}
    real_chroma = {n: chroma_histogram(real_audio[k], sr) for k, n in enumerate(names)}
    for k, n in enumerate(names):
        mine = [f for f in files if f.name.startswith(f"{n}_")]
        if not mine:
            continue
        audio = np.concatenate([sf.read(str(f), dtype="float32")[0] for f in mine])
        chroma = chroma_histogram(audio, sr)
        metrics["styles"][n] = {
            "samples": len(mine),
            "chroma_kl_to_own_style": chroma_kl(chroma, real_chroma[n]),
            "chroma_kl_to_other_styles": {o: chroma_kl(chroma, real_chroma[o]) for o in names if o != n},
            "spectral_distance_to_own_style": long_term_spectrum_distance(audio, real_audio[k]),
            "spectral_distance_between_real_styles": {
                o: long_term_spectrum_distance(real_audio[k], real_audio[j])
                for j, o in enumerate(names) if o != n},
        }
    timing = folder / "generation.json"
    if timing.is_file():
        metrics["real_time_factor"] = json.loads(timing.read_text())["real_time_factor"]
    return metrics
