"""The MelodyRNN network: stacked LSTM over per-step input features, softmax over events.

Magenta's melody_rnn (basic/mono/lookback) is exactly this: an LSTM whose input at step t
describes events[:t+1] and whose output predicts events[t+1].
"""

from __future__ import annotations

import torch
from torch import nn

LSTMState = tuple[torch.Tensor, torch.Tensor]


class MelodyLSTM(nn.Module):
    """Stacked LSTM language model over encoding features.

    Args:
        input_size: width of the per-step input features (38 for the basic one-hot).
        num_classes: size of the label vocabulary (38 for basic).
        hidden_size: LSTM units per layer (Magenta: 128; CPU default: 64).
        num_layers: stacked LSTM layers (Magenta: 2).
        dropout: dropout between layers and before the softmax (Magenta keep-prob 0.5).
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

    def forward(self, inputs: torch.Tensor, state: LSTMState | None = None
                ) -> tuple[torch.Tensor, LSTMState]:
        """inputs (B, T, input_size) -> logits (B, T, num_classes), new LSTM state."""
        out, state = self.lstm(inputs, state)  # (B, T, H)
        return self.head(self.dropout(out)), state
