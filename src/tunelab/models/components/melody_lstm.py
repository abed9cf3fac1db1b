"""The MelodyRNN networks: stacked LSTMs over per-step encoding features.

Magenta's melody_rnn (basic, mono, lookback) is :class:`MelodyLSTM`: an LSTM whose input
at step t describes events[:t+1] and whose softmax predicts events[t+1].
attention_rnn is :class:`AttentionMelodyLSTM`: the same stack with the first layer
wrapped in an attention cell over its last ``attn_length`` outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from tunelab.models.components.tf_init import glorot_uniform_, tf_linear_, tf_lstm_

State = tuple  # nested tuples of tensors; each network documents its own layout


class MelodyLSTM(nn.Module):
    """Stacked LSTM language model over encoding features.

    Args:
        input_size: width of the per-step input features (38 for the basic one-hot).
        num_classes: size of the label vocabulary (38 for basic).
        hidden_size: LSTM units per layer (Magenta: 128).
        num_layers: stacked LSTM layers (Magenta: 2).
        dropout: dropout on each layer's output (Magenta: keep-prob 0.5).
    """

    def __init__(self, input_size: int, num_classes: int, hidden_size: int = 128,
                 num_layers: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        self.input_size = input_size
        self.num_classes = num_classes
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)
        tf_lstm_(self.lstm)  # Magenta trains these with TF's initialisers (tf_init)
        tf_linear_(self.head)

    def forward(self, inputs: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """inputs (B, T, input_size) -> logits (B, T, num_classes), state ((L, B, H), (L, B, H))."""
        out, state = self.lstm(inputs, state)  # (B, T, H)
        return self.head(self.dropout(out)), state


class AttentionCell(nn.Module):
    """An LSTM cell wrapped with attention over its last ``attn_length`` outputs.

    Mirrors magenta/contrib/rnn.py ``AttentionCellWrapper`` (Bahdanau-style scores over a
    sliding window of past outputs; attention size = cell size):
      x' = W1 [x; a_{t-1}];  (h, c) = LSTM(x', state)
      s_i = v . tanh(K m_i + W3 [c; h]);  a_t = sum softmax(s)_i m_i  over the window m
      o_t = W2 [h; a_t];  the window drops its oldest entry and appends o_t.
    Every weight starts as TF's would (glorot-uniform, zero biases, forget bias 1): with
    PyTorch's defaults the o_t -> a_t loop let the window's norm grow to 1e4-1e8.
    """

    def __init__(self, input_size: int, hidden_size: int, attn_length: int) -> None:
        super().__init__()
        self.hidden_size, self.attn_length = hidden_size, attn_length
        self.input_mix = nn.Linear(input_size + hidden_size, input_size)  # W1
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.attn_keys = nn.Linear(hidden_size, hidden_size, bias=False)  # K (a 1x1 conv in TF)
        self.attn_query = nn.Linear(2 * hidden_size, hidden_size)  # W3 over [c; h]
        self.attn_v = nn.Parameter(torch.empty(hidden_size))
        self.output_proj = nn.Linear(2 * hidden_size, hidden_size)  # W2
        for layer in (self.input_mix, self.attn_keys, self.attn_query, self.output_proj):
            tf_linear_(layer)  # attn_w is a [1, 1, H, H] conv kernel: the same fans as a Linear
        tf_lstm_(self.cell)
        glorot_uniform_(self.attn_v, hidden_size, hidden_size)  # TF gives a 1-D shape fan_in = fan_out = n

    def initial_state(self, batch: int, device: torch.device) -> State:
        z = torch.zeros(batch, self.hidden_size, device=device)
        window = torch.zeros(batch, self.attn_length, self.hidden_size, device=device)
        return (z, z, z, window)  # h, c, last attention vector, window of past outputs

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step: x (B, input_size) -> output (B, H), new state."""
        h, c, attn, window = state
        h, c = self.cell(self.input_mix(torch.cat([x, attn], -1)), (h, c))
        query = self.attn_query(torch.cat([c, h], -1))  # (B, H)
        scores = torch.tanh(self.attn_keys(window) + query[:, None]) @ self.attn_v  # (B, L)
        attn = (torch.softmax(scores, -1)[..., None] * window).sum(1)  # (B, H)
        out = self.output_proj(torch.cat([h, attn], -1))  # (B, H)
        window = torch.cat([window[:, 1:], out[:, None]], 1)  # slide: drop oldest, add newest
        return out, (h, c, attn, window)


class AttentionMelodyLSTM(nn.Module):
    """Magenta's attention_rnn: attention-wrapped first LSTM layer, plain layers above.

    Args:
        input_size: feature width (74 for the key-melody encoding).
        num_classes: label vocabulary (40).
        hidden_size: units per layer (Magenta: 128).
        num_layers: layers in the stack, the first with attention (Magenta: 2).
        dropout: dropout on each layer's output (Magenta: keep-prob 0.5).
        attn_length: how many past first-layer outputs attention sees (Magenta: 40).
    """

    def __init__(self, input_size: int, num_classes: int, hidden_size: int = 128,
                 num_layers: int = 2, dropout: float = 0.5, attn_length: int = 40) -> None:
        super().__init__()
        self.input_size, self.num_classes = input_size, num_classes
        self.attention = AttentionCell(input_size, hidden_size, attn_length)
        self.upper = (nn.LSTM(hidden_size, hidden_size, num_layers - 1, batch_first=True,
                              dropout=dropout if num_layers > 2 else 0.0)
                      if num_layers > 1 else None)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)
        if self.upper is not None:
            tf_lstm_(self.upper)
        tf_linear_(self.head)

    def forward(self, inputs: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """inputs (B, T, F) -> logits (B, T, C), state (attention-cell state, upper LSTM state).

        The attention layer runs step by step; the upper layers see its whole output at once.
        """
        cell_state, upper_state = state if state is not None else (
            self.attention.initial_state(inputs.shape[0], inputs.device), None)
        outs = []
        for t in range(inputs.shape[1]):
            out, cell_state = self.attention(inputs[:, t], cell_state)
            outs.append(out)
        hidden = self.dropout(torch.stack(outs, 1))  # (B, T, H)
        if self.upper is not None:
            hidden, upper_state = self.upper(hidden, upper_state)
            hidden = self.dropout(hidden)
        return self.head(hidden), (cell_state, upper_state)
