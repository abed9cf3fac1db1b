"""One place that writes and reads tunelab checkpoints (config + vocab + weights)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import tunelab
from tunelab.atomic import atomic_file

FORMAT_VERSION = 1


class CheckpointMismatchError(ValueError):
    """A checkpoint that isn't the model, format or vocabulary asked for."""


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in key order: a flipped byte
    anywhere in the weights changes it (torch.load does not check the zip's CRCs)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # 1-D first: a 0-dim tensor (a buffer such as a step count) cannot be viewed as bytes
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: Path, net: torch.nn.Module, cfg: Any, vocab: list[str],
                    extra: dict | None = None) -> None:
    """Write atomically: the resolved config travels with the weights."""
    payload = {
        "format_version": FORMAT_VERSION,
        "tunelab_version": tunelab.__version__,
        "model_name": cfg.model.name,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "vocab": list(vocab),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        **(extra or {}),
    }
    payload["weights_sha256"] = weights_digest(payload["state_dict"])
    with atomic_file(Path(path)) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, expect_model: str | None = None
                    ) -> tuple[torch.nn.Module, dict]:
    """Rebuild the network on CPU, whatever device trained it.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        CheckpointMismatchError: not a checkpoint (empty, text, truncated), weights that do not
            match their stored digest, wrong format version or a different model than requested.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; run `tunelab train` for this model first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (EOFError, pickle.UnpicklingError, RuntimeError, ValueError, KeyError, AttributeError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointMismatchError(f"{path}: not a readable tunelab checkpoint ({why}); "
                                      "retrain it or restore it (dvc checkout)") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        got = payload.get("format_version") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointMismatchError(
            f"{path}: checkpoint format {got}, this tunelab reads {FORMAT_VERSION}; retrain it")
    if expect_model is not None and payload["model_name"] != expect_model:
        raise CheckpointMismatchError(
            f"{path} holds model {payload['model_name']!r}, not the requested {expect_model!r}")
    stored = payload.get("weights_sha256")  # checkpoints written before digests have none
    if stored is not None and weights_digest(payload["state_dict"]) != stored:
        raise CheckpointMismatchError(f"{path}: the weights do not match their stored sha256 (the file is "
                                      "corrupt); retrain it or restore it (dvc checkout)")
    net = instantiate(OmegaConf.create(payload["config"]["model"]["net"]))
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return net, payload


def load_trained(cfg: Any) -> tuple[torch.nn.Module, Any, str]:
    """The trained network of ``cfg``'s model and corpus, its encoding and the encoding's name.

    Raises:
        FileNotFoundError, CheckpointMismatchError: as :func:`load_checkpoint`, and a
            mismatch when the checkpoint's vocabulary is not this tunelab's encoding.
    """
    from tunelab.encodings.registry import encoding_for
    from tunelab.paths import model_dir

    path = model_dir(cfg) / "model.ckpt"
    net, payload = load_checkpoint(path, expect_model=cfg.model.name)
    name = payload["config"]["model"]["encoding"]
    encoding = encoding_for(cfg, name)
    if list(encoding.vocab.tokens) != payload["vocab"]:
        raise CheckpointMismatchError(f"{path} was trained with another {name} vocabulary; retrain it")
    return net, encoding, name
