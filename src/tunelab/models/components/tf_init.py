"""TensorFlow 1 initialisation and gradient clipping for the networks Magenta trained with it
(MelodyRNN, Performance RNN: magenta/models/shared/events_rnn_graph.py).

PyTorch's defaults differ: U(-1/sqrt(H), 1/sqrt(H)) for every LSTM tensor and zero forget
bias, Kaiming-uniform Linear layers. TF's ``get_variable`` defaults to glorot-uniform
kernels and zero biases, ``BasicLSTMCell`` adds ``forget_bias=1.0``, and tf_slim's
``create_train_op(clip_gradient_norm=c)`` clips each variable's gradient to norm c on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import torch
from torch import nn


def glorot_uniform_(tensor: torch.Tensor, fan_in: int, fan_out: int) -> torch.Tensor:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (TF's ``glorot_uniform_initializer``)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


def tf_linear_(layer: nn.Linear) -> None:
    """tf_slim ``linear`` / rnn_cell ``_Linear``: glorot-uniform kernel, zero bias."""
    glorot_uniform_(layer.weight, layer.in_features, layer.out_features)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def tf_lstm_(lstm: nn.LSTM | nn.LSTMCell, forget_bias: float = 1.0) -> None:
    """``BasicLSTMCell`` per layer: one glorot-uniform kernel over [x; h] -> 4H (PyTorch
    splits it into weight_ih and weight_hh, initialised with the joint fans), zero bias,
    and TF's constant forget-gate bias (here the trainable bias starts at it: PyTorch's gate
    order is i, f, g, o)."""
    H = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("weight_ih"):
            hh = getattr(lstm, name.replace("weight_ih", "weight_hh"))
            glorot_uniform_(p, p.shape[1] + hh.shape[1], 4 * H)
        elif name.startswith("weight_hh"):
            ih = getattr(lstm, name.replace("weight_hh", "weight_ih"))
            glorot_uniform_(p, ih.shape[1] + p.shape[1], 4 * H)
        elif name.startswith("bias"):
            with torch.no_grad():
                p.zero_()
                if name.startswith("bias_ih"):
                    p[H:2 * H] = forget_bias


def tf_variables(named: Iterable[tuple[str, nn.Parameter]]) -> list[list[nn.Parameter]]:
    """Parameters grouped as TF variables: an LSTM layer's weight_ih and weight_hh are one
    TF kernel; every other tensor is its own variable (the two PyTorch LSTM biases get the
    same gradient, each the gradient of TF's single bias)."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in named:
        if p.requires_grad:
            groups.setdefault(re.sub(r"weight_(ih|hh)", "kernel", name), []).append(p)
    return list(groups.values())


@torch.no_grad()
def clip_per_variable_(groups: list[list[nn.Parameter]], max_norm: float) -> None:
    """tf_slim ``clip_gradient_norms``: scale each variable's gradient to norm <= max_norm
    independently (``clip_by_norm``), unlike one global norm over the whole model."""
    for group in groups:
        grads = [p.grad for p in group if p.grad is not None]
        if not grads:
            continue
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        scale = max_norm / torch.clamp(norm, min=max_norm)  # 1 when norm <= max_norm
        for g in grads:
            g.mul_(scale)
