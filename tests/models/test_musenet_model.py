"""MuseNet network: structural embeddings on a hand-made piece, conditioning changes the
output, cached generation equals recompute, the fused and matmul attention agree, a
training step with gradient checkpointing."""

import math

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tunelab.config import load_config
from tunelab.datamodule import make_dataset, pad_collate
from tunelab.encodings import MuseNetEncoding
from tunelab.encodings.registry import encoding_for
from tunelab.models.components.musenet import MuseNetLM
from tunelab.models.components.sampling import generate
from tunelab.music.score import Note, Score, Track
from tunelab.pipeline.train import build_module

ENC = MuseNetEncoding(["bach", "children", "jazz"])


def tiny_net(**kw) -> MuseNetLM:
    torch.manual_seed(0)
    net = MuseNetLM(len(ENC.vocab), d_model=32, num_layers=2, num_heads=2, d_ff=64, dropout=0.0,
                    max_len=128, **kw)
    net.set_wait_steps(ENC.wait_steps)
    return net.eval()


def piece() -> Score:
    notes = (Note(0, 4, 60, 80), Note(4, 8, 62, 80), Note(8, 24, 64, 80), Note(24, 28, 65, 80))
    return Score("p", (Track("melody", notes),))


def test_structure_of_a_hand_made_piece():
    net = tiny_net()
    tokens = ENC.encode(piece(), "children")
    s = net.structure(torch.as_tensor(tokens)[None])
    words = [ENC.vocab.tokens[t] for t in tokens]
    # time after each token: waits of 4, 4, 16, 4 steps between the onsets
    times = dict(zip(words, s["time"][0].tolist(), strict=False))
    assert times["on:piano:3:60"] == 0 and times["on:piano:3:62"] == 4
    assert times["on:piano:3:64"] == 8 and times["on:piano:3:65"] == 24
    i = words.index("on:piano:3:65")
    assert s["bar"][0, i] == 24 % 16 and s["beat"][0, i] == 0 and s["elapsed"][0, i] == 6
    assert s["time"][0, -1] == 28  # the last note-off at step 28, then `end`


def test_conditioning_tokens_change_the_prediction():
    net = tiny_net()
    bach = torch.as_tensor(ENC.header("bach", ["piano"]))[None]
    jazz = torch.as_tensor(ENC.header("jazz", ["piano"]))[None]
    pb, pj = (net(torch.cat([torch.tensor([[net.bos]]), h], 1))[0][0, -1].softmax(-1) for h in (bach, jazz))
    assert (pb - pj).abs().sum() > 1e-3


def test_cached_generation_equals_recompute_and_keeps_the_header():
    net = tiny_net()
    prompt = torch.tensor([[net.bos, *ENC.header("jazz", ["reed", "bass"]).tolist()]])
    runs = [generate(net, prompt, 40, new_cache=nc, generator=torch.Generator().manual_seed(3))
            for nc in (net.new_cache, None)]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0][:, :prompt.shape[1]], prompt)


def test_fused_and_matmul_attention_agree():
    net = tiny_net()
    x = torch.as_tensor(ENC.encode(piece(), "bach"))[None]
    fused = net(x)[0]
    for m in net.modules():
        if hasattr(m, "fused"):
            m.fused = False
    assert torch.allclose(fused, net(x)[0], atol=1e-5)


def test_context_is_enforced():
    with pytest.raises(ValueError, match="context"):
        tiny_net()(torch.zeros(1, 129, dtype=torch.long))


def test_training_step_with_checkpointing_and_augmentation(tmp_path):
    cfg = load_config(["model=musenet", "model.net.d_model=32", "model.net.d_ff=64",
                       "model.net.num_heads=2", "model.net.gradient_checkpointing=true"])
    encoding = encoding_for(cfg, "musenet")
    module = build_module(cfg, encoding)
    assert module.net.wait_steps.sum() == sum(range(1, 49))
    seqs = [ENC.encode(piece(), s) for s in ("bach", "children", "jazz")]
    ds = make_dataset(module.net, encoding, seqs, 16, augment=encoding.augmenter(**cfg.model.augment))
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=DataLoader(ds, batch_size=2, collate_fn=pad_collate))
    assert trainer.global_step == 2 and math.isfinite(trainer.callback_metrics["train/loss"])


def test_augmenter_transposes_and_stretches_whole_pieces():
    tokens = ENC.encode(piece(), "bach")
    rng = np.random.default_rng(0)
    aug = ENC.augmenter(transpose=3, velocity_shift=1)
    for _ in range(10):
        out = aug(tokens.copy(), rng)
        assert len(out) == len(tokens)
        pitches = sorted(n.pitch for t in ENC.decode(out).tracks for n in t.notes)
        shift = pitches[0] - 60
        assert abs(shift) <= 3 and pitches == [60 + shift, 62 + shift, 64 + shift, 65 + shift]
    stretched = ENC.decode(ENC.augmenter(time_scales=[2.0])(tokens, rng))
    assert [(n.start, n.end) for n in stretched.tracks[0].notes] == [(0, 8), (8, 16), (16, 48), (48, 56)]


def test_training_windows_come_from_the_augmented_piece():
    net = tiny_net()
    tokens = ENC.encode(piece(), "jazz")
    ds = make_dataset(net, ENC, [tokens], 64, augment=ENC.augmenter(time_scales=[2.0]))
    item = ds[0]
    assert item["inputs"][0] == net.bos and len(item["labels"]) == len(tokens)
    assert ENC.decode(item["labels"].numpy()).tracks[0].notes[-1].end == 56  # stretched x2
