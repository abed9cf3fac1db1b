"""Performance RNN family: the LSTM's recurrent state as a sampling cache, a config sized from
the encoding, and a tiny train -> sample -> evaluate run on the children corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from tunelab.cli import main
from tunelab.config import load_config
from tunelab.encodings.registry import encoding_for
from tunelab.models.components.performance_lstm import PerformanceLSTM
from tunelab.models.components.sampling import generate
from tunelab.music.midi_io import read_midi
from tunelab.pipeline.train import build_module

TINY = ("model.net.hidden_size=16", "model.net.num_layers=2")


def test_incremental_state_gives_the_logits_of_a_full_recompute():
    torch.manual_seed(0)
    net = PerformanceLSTM(20, hidden_size=16, num_layers=2, dropout=0.0).eval()
    tokens = torch.cat([torch.full((3, 1), net.bos), torch.randint(0, 20, (3, 11))], 1)
    full, _ = net(tokens)
    cache = net.new_cache()
    steps = [net(tokens[:, :4], cache)[0]]  # a primer at once, then one token per call
    steps += [net(tokens[:, t:t + 1], cache)[0] for t in range(4, tokens.shape[1])]
    assert cache.length == tokens.shape[1]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_sampling_with_the_state_matches_sampling_by_recompute():
    torch.manual_seed(0)
    net = PerformanceLSTM(20, hidden_size=16, num_layers=1, dropout=0.0).eval()
    prompt = torch.tensor([[net.bos, 3, 5]]).repeat(2, 1)
    runs = [generate(net, prompt, 30, new_cache=cache, generator=torch.Generator().manual_seed(1))
            for cache in (net.new_cache, None)]
    assert runs[0].shape == (2, 33) and torch.equal(runs[0], runs[1])
    assert runs[0][:, :3].tolist() == prompt.tolist()


def test_config_builds_a_net_sized_by_the_encoding():
    cfg = load_config(["model=performance_rnn", *TINY])
    encoding = encoding_for(cfg, cfg.model.encoding)
    net = build_module(cfg, encoding).net
    assert isinstance(net, PerformanceLSTM) and net.token_inputs
    assert net.num_classes == len(encoding.vocab) == 388
    assert net.lstm.input_size == 389 and net.bos == 388  # one-hot events + the start token
    assert net.head.out_features == 388 and net.lstm.hidden_size == 16


def test_paper_experiment_has_magentas_size():
    m = load_config(["experiment=paper/performance_rnn"]).model
    assert (m.net.hidden_size, m.net.num_layers, m.net.dropout) == (512, 3, 0.0)
    assert (m.optimizer.lr, m.batch_size, m.seq_len, m.clip_norm) == (0.001, 64, 512, 3.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("prnn")
    base = [*tiny_overrides(tmp, net=TINY), f"corpus.mirror={mirror}", "model=performance_rnn",
            "corpus=children"]
    return tmp, base


def test_trains_samples_and_evaluates_through_the_cli(run):
    tmp, base = run
    for verb in ("download", "extract", "tokenize", "train", "sample", "evaluate"):
        assert main([verb, *base]) == 0, verb
    samples = sorted((tmp / "samples/performance_rnn-children").glob("*.mid"))
    assert len(samples) == 2
    for path in samples:
        assert read_midi(path, 4).num_notes > 0  # 48 sampled events decode to playable notes
    metrics = json.loads((tmp / "reports/metrics/performance_rnn-children.json").read_text())
    assert metrics["encoding"] == "performance"
    assert 0 < metrics["test"]["nll_per_step"] < np.log(388) + 1
    assert metrics["ngram_baseline"]["nll_per_step"] > 0 and "beats_baseline" in metrics
    assert metrics["samples"]["count"] == 2


def test_a_net_sized_for_another_vocabulary_is_a_config_error(run, capsys):
    _, base = run
    assert main(["train", *base, "model.net.num_classes=100"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.net.num_classes=100" in err and "388" in err and "\n" not in err
