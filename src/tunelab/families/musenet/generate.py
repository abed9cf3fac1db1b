"""MuseNet generation steered by a style and an instrument set (`tunelab generate
model=musenet style=bach instruments=[piano]`): the header tokens, or a primer MIDI's
tokens, then only the chosen instruments' notes may be sampled."""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tunelab.atomic import atomic_dir
from tunelab.datamodule import load_split
from tunelab.errors import ConfigError
from tunelab.models.components.sampling import generate
from tunelab.music.midi_io import write_midi
from tunelab.paths import processed_dir, samples_dir

log = logging.getLogger(__name__)


def corpus_instruments(cfg: DictConfig, encoding: Any, style: str) -> list[str]:
    """The most common instrument set of ``style``'s training pieces (their headers)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for seq in load_split(processed_dir(cfg, "musenet", corpus=style), "train"):
        tokens = [encoding.vocab.tokens[int(t)] for t in seq[:40]]
        header = tokens[:tokens.index("begin")]
        counts[tuple(t.split(":", 1)[1] for t in header if t.startswith("inst:"))] += 1
    if not counts:
        raise FileNotFoundError(f"no training pieces of style {style}: run the tokenize stage first")
    return list(counts.most_common(1)[0][0])


def allowed_mask(encoding: Any, instruments: list[str]) -> torch.Tensor:
    """True for tokens a body may use: waits, end, and notes of the chosen instruments."""
    ok = []
    for tok in encoding.vocab.tokens:
        kind, _, rest = tok.partition(":")
        note = kind in ("on", "off") and rest.split(":")[0] in instruments
        ok.append(tok == "end" or kind == "wait" or note)
    return torch.tensor(ok)


def prompt_for(cfg: DictConfig, encoding: Any, style: str) -> tuple[np.ndarray, list[str]]:
    """Header tokens (style, instruments, begin), or a primer MIDI's tokens without its end."""
    if cfg.sample.primer_midi:
        from tunelab.families.sequence import read_primer

        tokens = np.asarray(encoding.encode(read_primer(cfg), style))[:-1]
        body = tokens.tolist().index(encoding.vocab.index("begin"))
        header = [encoding.vocab.tokens[int(t)] for t in tokens[:body]]
        return tokens, [t.split(":", 1)[1] for t in header if t.startswith("inst:")]
    instruments = list(cfg.instruments) if cfg.instruments else corpus_instruments(cfg, encoding, style)
    try:
        return np.asarray(encoding.header(style, instruments)), instruments
    except ValueError as e:
        raise ConfigError(f"instruments={instruments}: {e}") from None


def generate_pieces(cfg: DictConfig, net: torch.nn.Module, encoding: Any, style: str,
                    generator: torch.Generator) -> list[Any]:
    """``sample.num_outputs`` scores of ``style``, in one batch with the KV cache; only the
    prompt's instruments may play (their note tokens, waits and end are the only choices)."""
    prompt, instruments = prompt_for(cfg, encoding, style)
    room = net.max_len - 1 - len(prompt)
    if room <= 0:
        raise ConfigError(f"the primer's {len(prompt)} tokens fill the model's context ({net.max_len})")
    n = min(cfg.sample.num_tokens, room)
    blocked = ~allowed_mask(encoding, instruments)
    log.info("%s with %s: %d tokens", style, ", ".join(instruments), n)
    s = cfg.sample
    tokens = generate(net, torch.tensor([[net.bos, *prompt.tolist()]]).repeat(s.num_outputs, 1), n,
                      new_cache=net.new_cache, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                      greedy=s.greedy, generator=generator,
                      constrain=lambda logits, t: logits.masked_fill(blocked, -math.inf))
    return [encoding.decode(row, score_id=f"musenet-{style}-{i:02d}")
            for i, row in enumerate(tokens[:, 1:].numpy())]


def sample_musenet(cfg: DictConfig, net: torch.nn.Module, encoding: Any) -> list[Path]:
    """``sample.num_outputs`` pieces per style (``style=`` one, else every style in
    ``styles``) -> samples/musenet-joint/{style}_NN.mid, one track per instrument."""
    styles = [cfg.style] if cfg.style else list(cfg.styles)
    for s in styles:
        if s not in cfg.styles:
            raise ConfigError(f"style={s} is not one the model knows; choose one of {list(cfg.styles)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    written = []
    with atomic_dir(samples_dir(cfg)) as out:
        for style in tqdm(styles, desc="styles", unit="style"):
            for i, score in enumerate(generate_pieces(cfg, net, encoding, style, gen)):
                written.append(write_midi(score, out / f"{style}_{i:02d}.mid"))
    return [samples_dir(cfg) / p.name for p in written]
