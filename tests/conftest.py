"""Shared fixtures: the real config, shrunk to tmp paths and CPU-tiny sizes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tunelab.config import load_config
from tunelab.music.score import Note, Score, TimeSignature, Track

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("TUNELAB_DATA_MIRROR", REPO.parent / "shared" / "data"))

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


# CI installs fluidsynth and chromium and sets this: there a missing tool fails, never skips.
REQUIRE_TOOLS = os.environ.get("TUNELAB_REQUIRE_BROWSER", "") not in ("", "0")


def require_tool(tool: str, hint: str) -> str:
    """The path of a system tool; skip without it, except under CI, where that fails."""
    exe = shutil.which(tool)
    if exe is None:
        if REQUIRE_TOOLS:
            pytest.fail(f"TUNELAB_REQUIRE_BROWSER=1 but {tool} is not on PATH: {hint}")
        pytest.skip(f"{tool} not installed ({hint})")
    return exe


@pytest.fixture(scope="session")
def fluidsynth() -> str:
    return require_tool("fluidsynth", "apt-get install fluidsynth")


TINY_TRANSFORMER = ("model.net.d_model=32", "model.net.d_ff=64", "model.net.num_heads=2")


def tiny_overrides(tmp_path: Path, net: tuple[str, ...] = ("model.net.hidden_size=16",)) -> list[str]:
    """Real config, tiny: tmp outputs, CSV logging, a few CPU steps; ``net`` shrinks the
    model (the default fits MelodyRNN, :data:`TINY_TRANSFORMER` the Transformers)."""
    return [
        f"paths.data={tmp_path}/data", f"paths.models={tmp_path}/models",
        f"paths.samples={tmp_path}/samples", f"paths.reports={tmp_path}/reports",
        f"paths.logs={tmp_path}/logs", f"paths.checkpoints={tmp_path}/checkpoints",
        "logger=csv", "trainer.max_steps=4",
        "trainer.val_check_interval=2", "trainer.log_every_n_steps=1", "model.batch_size=8",
        "model.seq_len=32", *net, "sample.num_outputs=2", "sample.num_steps=32",
        "sample.num_tokens=48",
    ]


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*overrides: str):
        return load_config([*tiny_overrides(tmp_path), f"corpus.mirror={MIRROR}", *overrides])
    return make


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not (MIRROR / "README.md").is_file():
        pytest.skip(f"no data mirror at {MIRROR}; set TUNELAB_DATA_MIRROR")
    return MIRROR


def score_of(*tracks: list[tuple[int, int, int]], ts: tuple[int, int] = (4, 4),
             sigs: tuple[TimeSignature, ...] | None = None, names: tuple[str, ...] | None = None,
             drums: bool = False) -> Score:
    """A score from (pitch, start, end) triples per track, like note-seq's testing_lib."""
    names = names or tuple(f"t{i}" for i in range(len(tracks)))
    return Score(
        id="test",
        tracks=tuple(Track(n, tuple(Note(s, e, p) for p, s, e in notes), is_drum=drums)
                     for n, notes in zip(names, tracks, strict=True)),
        time_signatures=sigs or (TimeSignature(0, *ts),),
    )
