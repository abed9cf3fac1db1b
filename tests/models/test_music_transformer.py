"""Music Transformer family: configs sized from the encoding, the token and accompaniment
datasets, training through the shared Lightning module, the warm-up schedule."""

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from tunelab.config import load_config
from tunelab.datamodule import AccompanimentDataset, TokenSequenceDataset, make_dataset, pad_collate
from tunelab.encodings.registry import encoding_for
from tunelab.models.components.transformer import TransformerEncoderDecoder, TransformerLM
from tunelab.models.lm_module import net_logits, warmup_cosine
from tunelab.pipeline.train import build_module

MODELS = ["music_transformer", "music_transformer_local", "transformer_baseline"]
TINY = ["model.net.d_model=32", "model.net.d_ff=64", "model.net.num_heads=2", "model.net.dropout=0.0"]


@pytest.mark.parametrize("overrides,classes", [([], 388), (["model.encoding=voice_grid"], 129),
                                               (["model.encoding=melody_onehot"], 38)])
def test_vocabulary_size_follows_the_encoding(overrides, classes):
    net = instantiate(load_config(["model=music_transformer", *overrides]).model.net)
    assert net.num_classes == classes and net.embed.num_embeddings == classes + 1  # + start token


@pytest.mark.parametrize("corpus,parts", [("bach", 3), ("jazz", 1), ("jsb", 3)])
def test_accompaniment_parts_follow_the_corpus(corpus, parts):
    cfg = load_config(["model=music_transformer_accompaniment", f"corpus={corpus}"])
    assert instantiate(cfg.model.net).num_parts == parts
    assert encoding_for(cfg, "voice_events").num_voices == parts + 1


def test_model_variants_differ_only_in_attention():
    nets = {m: load_config([f"model={m}"]).model.net for m in MODELS}
    assert nets["music_transformer"].position == "relative" and nets["music_transformer"].block_size is None
    assert nets["music_transformer_local"].block_size == 64
    assert nets["transformer_baseline"].position == "absolute"
    sizes = {m: sum(p.numel() for p in instantiate(n).parameters() if p.dim() > 1) for m, n in nets.items()}
    # relative embeddings are the only extra weights
    assert sizes["music_transformer"] - sizes["transformer_baseline"] == 3 * 4 * 256 * 32


def test_token_windows_cover_every_token_once():
    seqs = [np.arange(10), np.arange(3)]
    ds = TokenSequenceDataset(seqs, bos=99, window=4, random=False)
    items = [ds[i] for i in range(len(ds))]
    assert len(items) == 3 + 1
    assert items[0]["inputs"].tolist() == [99, 0, 1, 2] and items[0]["labels"].tolist() == [0, 1, 2, 3]
    assert items[1]["inputs"].tolist() == [3, 4, 5, 6]  # the previous token, not the start token
    labels = np.concatenate([it["labels"].numpy() for it in items])
    assert labels.tolist() == [*range(10), *range(3)]
    train = TokenSequenceDataset(seqs, bos=99, window=4, seed=0)
    assert len(train) == 2 and all(len(train[i]["labels"]) <= 4 for i in range(2))


def test_accompaniment_items_split_melody_from_parts():
    grid = np.array([[60, 48, 36], [0, 0, 0], [62, 1, 38]])  # (T=3, melody + 2 parts) labels
    ds = AccompanimentDataset([grid.reshape(-1)], num_parts=2, bos=130, window=None)
    item = ds[0]
    assert item["source"].tolist() == [60, 0, 62]
    assert item["labels"].tolist() == [48, 36, 0, 0, 1, 38]
    assert item["inputs"].tolist() == [130, 48, 36, 0, 0, 1]
    batch = pad_collate([item, AccompanimentDataset([grid[:2].reshape(-1)], 2, 130, None)[0]])
    assert batch["source_mask"].tolist() == [[True] * 3, [True, True, False]]
    assert batch["labels"][1, 4:].tolist() == [-100, -100]


def _loader(net, encoding, n=4):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, net.num_classes, 40 * (net.num_parts + 1 if hasattr(net, "num_parts") else 1))
            for _ in range(n)]
    return DataLoader(make_dataset(net, encoding, seqs, 16), batch_size=2, collate_fn=pad_collate)


@pytest.mark.parametrize("model", [*MODELS, "music_transformer_accompaniment"])
def test_one_lightning_training_step_with_warmup(model, tmp_path):
    cfg = load_config([f"model={model}", *TINY])
    encoding = encoding_for(cfg, cfg.model.encoding)
    module = build_module(cfg, encoding)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=_loader(module.net, encoding))
    assert trainer.global_step == 2
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(cfg.model.optimizer.lr * 3 / cfg.model.warmup_steps)  # still warming up


@pytest.mark.parametrize("net", [
    TransformerLM(20, d_model=32, num_layers=2, num_heads=2, d_ff=64, dropout=0.0, max_relative_position=16),
    TransformerEncoderDecoder(20, num_parts=2, d_model=32, num_layers=1, num_decoder_layers=2, num_heads=2,
                              d_ff=64, dropout=0.0, max_relative_position=16),
], ids=["decoder", "encoder-decoder"])
def test_overfits_a_tiny_batch(net):
    torch.manual_seed(0)
    batch = next(iter(_loader(net, None, n=2)))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for step in range(300):
        opt.zero_grad()
        logits = net_logits(net, batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
        loss.backward()
        opt.step()
        if step == 0:
            first = loss.item()
    assert first > 2.5 and loss.item() < 0.2  # from chance (ln 20 = 3.0) to memorized


def test_warmup_then_cosine_to_a_tenth():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.55)
    assert warmup_cosine(110, 10, 110) == pytest.approx(0.1) == warmup_cosine(500, 10, 110)
