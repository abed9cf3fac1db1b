"""MusicVAE (Roberts et al. 2018): a recurrent VAE over fixed windows -- 2-bar and 16-bar
melodies (flat or hierarchical decoder) and 16-bar trios; sampling the prior,
interpolation and attribute vectors (``tunelab vae``).

docs/families/music_vae.md
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from tunelab.errors import ConfigError, require
from tunelab.families.base import Family, FigureMaker, Table
from tunelab.families.music_vae import latent
from tunelab.families.music_vae.figures import music_vae_16bar, music_vae_interpolation
from tunelab.families.music_vae.latent import evaluate_music_vae, sample_music_vae
from tunelab.families.music_vae.tables import TABLE_1
from tunelab.models.vae_module import SAMPLING_SCHEDULES


class MusicVAE(Family):
    name = "music_vae"
    docs = "docs/families/music_vae.md"

    def validate(self, cfg: DictConfig) -> None:
        super().validate(cfg)
        vae = cfg.model.vae
        require(vae.sampling_schedule in SAMPLING_SCHEDULES, "model.vae.sampling_schedule",
                vae.sampling_schedule, f"choose one of {', '.join(SAMPLING_SCHEDULES)}")
        if vae.sampling_schedule == "inverse_sigmoid":
            require(vae.sampling_rate >= 1, "model.vae.sampling_rate", vae.sampling_rate,
                    "must be >= 1 for inverse_sigmoid (k; Magenta uses 1000)")
        else:
            require(0 <= vae.sampling_rate <= 1, "model.vae.sampling_rate", vae.sampling_rate,
                    "must be in [0, 1] for constant and exponential schedules")
        require(vae.max_beta >= 0, "model.vae.max_beta", vae.max_beta, "must be >= 0")
        require(0 <= vae.beta_rate < 1, "model.vae.beta_rate", vae.beta_rate, "must be in [0, 1)")
        require(vae.free_bits >= 0, "model.vae.free_bits", vae.free_bits, "must be >= 0 (bits over all of z)")
        if cfg.model.encoding == "trio_16bar":
            require(cfg.corpus.get("trio") is not None, f"corpus.{cfg.corpus.name}.trio", None,
                    "this corpus names no melody, bass and harmony tracks; use corpus=bach, jazz or jsb")

    def check_net(self, cfg: DictConfig, net: torch.nn.Module, encoding: Any) -> None:
        shape = (net.num_classes, net.num_parts, net.window_steps)
        want = (len(encoding.vocab), encoding.num_parts, encoding.window_steps)
        if shape != want:
            raise ConfigError(f"model.net: {shape[0]} classes x {shape[1]} parts x {shape[2]} steps but "
                              f"encoding {cfg.model.encoding} has {want[0]} x {want[1]} x {want[2]}")

    def module_args(self, cfg: DictConfig, encoding: Any) -> dict[str, Any]:
        return dict(cfg.model.vae)  # beta annealing, free bits, scheduled sampling, lr decay

    def generate(self, cfg: DictConfig) -> list[Path]:
        net, encoding, _ = self.load(cfg)
        return sample_music_vae(cfg, net, encoding)

    def evaluate(self, cfg: DictConfig) -> dict:
        net, encoding, _ = self.load(cfg)
        return evaluate_music_vae(cfg, net, encoding)

    def run_verb(self, cfg: DictConfig, action: str, files: list[Path], *, steps: int = 8,
                 attribute: str | None = None, amount: float = 1.0, temperature: float = 0.5,
                 out: Path | None = None) -> tuple[list[Path], str]:
        """``tunelab vae sample|interpolate|attribute``: the files written and what to print.

        Raises:
            ConfigError: the model is not a MusicVAE, or the wrong number of files.
        """
        if cfg.model.family != self.name:
            raise ConfigError(f"model={cfg.model.name} is not a MusicVAE; use model=music_vae_mel_2bar, "
                              "music_vae_mel_16bar_hier, music_vae_mel_16bar_flat or music_vae_trio_16bar")
        want = {"sample": 0, "interpolate": 2, "attribute": 1}[action]
        if len(files) != want:
            raise ConfigError(f"tunelab vae {action} takes {want} MIDI file(s), got {len(files)}: "
                              f"{' '.join(map(str, files)) or '(none)'}")
        if action == "sample":
            paths = self.generate(cfg)
            return paths, "\n".join(map(str, paths))
        net, encoding, _ = self.load(cfg)
        if action == "interpolate":
            a, b = files
            out = out or a.with_name(f"{a.stem}_to_{b.stem}.mid")
            midi, png = latent.interpolate(cfg, net, encoding, a, b, steps, out, temperature)
            return [midi, png], f"{midi}\n{png}"
        if attribute is None:
            raise ConfigError(f"tunelab vae attribute needs --name ({', '.join(latent.ATTRIBUTES)})")
        src = files[0]
        out = out or src.with_name(f"{src.stem}_{attribute}{amount:+g}.mid")
        midi, change = latent.attribute(cfg, net, encoding, attribute, amount, src, out, temperature)
        return [midi], f"{midi}\n{change['attribute']}: {change['before']:.3f} -> {change['after']:.3f}"

    def figures(self) -> dict[str, FigureMaker]:
        return {"music_vae_16bar": music_vae_16bar, "music_vae_interpolation": music_vae_interpolation}

    def tables(self) -> list[Table]:
        return [TABLE_1]


FAMILY = MusicVAE()
