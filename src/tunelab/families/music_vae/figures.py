"""MusicVAE's figures: Table 1's 16-bar accuracies, and an interpolation between two test melodies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from tunelab.checkpoint import load_checkpoint
from tunelab.datamodule import load_split
from tunelab.encodings.registry import build_encoding
from tunelab.families.music_vae.latent import interpolate_windows
from tunelab.plotting import Skip, draw_piano_roll, plt, read_table


def music_vae_16bar(cfg: DictConfig, runs: dict[str, dict]):
    rows = read_table(cfg.paths.reports, "music_vae_16bar")
    labels = [f"{r['model'].removeprefix('music_vae_mel_16bar_')}\n{r['corpus']}" for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.8 * len(rows), 4), sharey=True)
    for ax, kind in zip(axes, ("teacher_forced", "sampled"), strict=True):
        ax.bar(x - 0.2, [r[kind] for r in rows], 0.4, label="ours")
        ax.bar(x + 0.2, [r[f"published_{kind}"] for r in rows], 0.4, label="Roberts et al. 2018")
        ax.plot(x, [r["majority"] for r in rows], "k_", ms=20, label="always-rest floor")
        ax.set_xticks(x, labels, fontsize=8)
        ax.set(title=f"{kind.replace('_', '-')} accuracy", ylim=(0, 1))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig, "MusicVAE 16-bar: flat vs hierarchical decoder", (
        "Reconstruction accuracy on test windows beside Table 1 of Roberts et al. (2018), with the "
        "accuracy of always predicting the most common event.")


def music_vae_interpolation(cfg: DictConfig, runs: dict[str, dict]):
    corpus, run = "bach", "music_vae_mel_2bar"
    try:
        net, payload = load_checkpoint(Path(cfg.paths.models) / f"{run}-{corpus}" / "model.ckpt", run)
    except FileNotFoundError as e:
        raise Skip(str(e)) from None
    name = payload["config"]["model"]["encoding"]
    encoding = build_encoding(name)
    test = load_split(Path(cfg.paths.data) / "processed" / corpus / name, "test")
    ends = [np.asarray(s[: encoding.window_steps]) for s in test if len(s) >= encoding.window_steps]
    if len(ends) < 2:
        raise Skip(f"fewer than two {name} test windows in {corpus}")
    windows = interpolate_windows(net, np.stack([ends[0], ends[len(ends) // 2]]), 7, 0.5, cfg.seed)
    score = encoding.to_score(windows, "interpolation")
    fig, ax = plt.subplots(figsize=(12, 4))
    draw_piano_roll(ax, score, encoding.window_steps,
                    f"music_vae_mel_2bar-{corpus}: two test melodies, 7 steps of slerp between their z")
    fig.tight_layout()
    return fig, "MusicVAE interpolation", (
        "The 2-bar model decodes (temperature 0.5) spherical interpolations between the posterior means "
        "of two test melodies; the first and last windows are the reconstructions.")
