"""MelodyRNN / Performance RNN start and clip as Magenta's TF graphs do
(magenta/models/shared/events_rnn_graph.py, magenta/contrib/rnn.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tunelab.models.components.melody_lstm import AttentionMelodyLSTM, MelodyLSTM
from tunelab.models.components.performance_lstm import PerformanceLSTM
from tunelab.models.components.tf_init import clip_per_variable_, tf_variables
from tunelab.models.lm_module import EventLMModule


def _check_lstm(lstm: nn.LSTM | nn.LSTMCell) -> None:
    H = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("weight"):
            suffix = name[len("weight_ih"):]
            fan = getattr(lstm, "weight_ih" + suffix).shape[1] + getattr(lstm, "weight_hh" + suffix).shape[1]
            bound = math.sqrt(6 / (fan + 4 * H))  # one glorot kernel over [x; h] -> 4H
            assert p.abs().max() <= bound
            assert p.abs().max() > 0.9 * bound  # uniform over the whole range, not a narrower one
        elif name.startswith("bias_ih"):
            expected = torch.zeros(4 * H)
            expected[H:2 * H] = 1.0  # BasicLSTMCell forget_bias
            assert torch.equal(p.detach(), expected)
        else:
            assert not p.detach().any(), name


@pytest.mark.parametrize("net", [MelodyLSTM(38, 38), PerformanceLSTM(50, hidden_size=32)])
def test_lstm_stack_starts_like_basic_lstm_cell(net: MelodyLSTM) -> None:
    torch.manual_seed(0)
    _check_lstm(net.lstm)
    assert not net.head.bias.detach().any()
    assert net.head.weight.abs().max() <= math.sqrt(6 / sum(net.head.weight.shape))


def test_attention_cell_starts_like_attention_cell_wrapper() -> None:
    torch.manual_seed(0)
    net = AttentionMelodyLSTM(74, 40, hidden_size=64)
    cell = net.attention
    _check_lstm(cell.cell)
    _check_lstm(net.upper)
    for layer in (cell.input_mix, cell.attn_keys, cell.attn_query, cell.output_proj, net.head):
        assert layer.bias is None or not layer.bias.detach().any()
        assert layer.weight.abs().max() <= math.sqrt(6 / sum(layer.weight.shape))
    assert cell.attn_v.abs().max() <= math.sqrt(3 / 64)  # glorot of a 1-D shape: fans n and n


def test_attention_window_stays_bounded_at_init() -> None:
    """The o_t -> a_t loop: with PyTorch's default init the window grew without bound."""
    torch.manual_seed(0)
    net = AttentionMelodyLSTM(74, 40, hidden_size=128).eval()
    x = torch.zeros(2, 512, 74)
    x[..., torch.randint(0, 74, (512,))] = 1.0
    with torch.no_grad():
        _, (cell_state, _) = net(x)
    assert cell_state[3].norm(dim=-1).max() < 10.0


def test_per_variable_clipping_clips_each_tf_variable_alone() -> None:
    lstm = nn.LSTM(3, 4)
    for i, p in enumerate(lstm.parameters()):
        p.grad = torch.full_like(p, float(i + 1))
    groups = tf_variables(lstm.named_parameters())
    assert len(groups) == 3  # kernel (weight_ih + weight_hh), bias_ih, bias_hh
    clip_per_variable_(groups, 1.0)
    for group in groups:
        norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in group))
        assert norm == pytest.approx(1.0)
    small = nn.Linear(2, 2)
    small.weight.grad = torch.full_like(small.weight, 0.1)
    clip_per_variable_([[small.weight]], 1.0)
    assert torch.allclose(small.weight.grad, torch.full_like(small.weight, 0.1))  # under the norm: kept


def test_module_rejects_unknown_clip_mode_and_schedule() -> None:
    with pytest.raises(ValueError, match="clip_mode"):
        EventLMModule(MelodyLSTM(38, 38), torch.optim.Adam, clip_mode="tf")
    with pytest.raises(ValueError, match="lr_schedule"):
        EventLMModule(MelodyLSTM(38, 38), torch.optim.Adam, lr_schedule="linear")
