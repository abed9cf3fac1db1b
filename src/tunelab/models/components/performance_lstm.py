"""Performance RNN's network (Simon & Oore 2017; magenta/models/performance_rnn): a stacked
LSTM over one-hot performance events with a softmax over the next event, sampled one event
at a time with its recurrent state as the "cache" of :func:`~.sampling.generate`.

The stack and its head are :class:`~.melody_lstm.MelodyLSTM`'s (Magenta builds both from
the same ``events_rnn_graph``); only the inputs differ: token ids, one-hot inside the net.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tunelab.models.components.melody_lstm import MelodyLSTM


@dataclass
class RecurrentCache:
    """What an LSTM carries between incremental calls, in place of a Transformer's keys and
    values: ``state`` = (h, c), each (num_layers, B, H), None before the first call (zeros);
    ``length`` counts the tokens fed so far. Mutable, like :class:`~.attention.KVCache`."""

    state: tuple[torch.Tensor, torch.Tensor] | None = None
    length: int = 0


class PerformanceLSTM(MelodyLSTM):
    """Stacked LSTM language model over ``num_classes`` performance events.

    Input id ``num_classes`` is the start token (:attr:`bos`), as for the Transformer LMs, so
    the first event of a piece is predicted too (Magenta conditions on the first event instead).

    Args:
        num_classes: event vocabulary (388 for the ``performance`` encoding).
        hidden_size: LSTM units per layer (Magenta: 512).
        num_layers: stacked LSTM layers (Magenta: 3).
        dropout: dropout on each layer's output (Magenta: keep-prob 1.0, i.e. none).
    """

    token_inputs = True
    recurrent = True  # evaluated on whole pieces (tunelab.datamodule.make_dataset)

    def __init__(self, num_classes: int, hidden_size: int = 512, num_layers: int = 3,
                 dropout: float = 0.0) -> None:
        # One-hot inputs (F.one_hot, no embedding table): Magenta's 'performance' configs feed
        # OneHotEventSequenceEncoderDecoder vectors (performance_model.py), so the first layer's
        # input weights are the only per-event parameters; + 1 width for the start token.
        super().__init__(num_classes + 1, num_classes, hidden_size, num_layers, dropout)

    @property
    def bos(self) -> int:
        return self.num_classes

    def new_cache(self) -> RecurrentCache:
        return RecurrentCache()

    def forward(self, inputs: torch.Tensor, cache: RecurrentCache | None = None
                ) -> tuple[torch.Tensor, RecurrentCache | None]:
        """``inputs`` (B, L) ids -> logits (B, L, num_classes). With ``cache`` (from
        :meth:`new_cache`) the run continues from its state and ``inputs`` are the new tokens
        only: O(1) work per sampled token. Without it every call starts from zeros."""
        x = F.one_hot(inputs, self.input_size).to(self.head.weight.dtype)
        logits, state = super().forward(x, None if cache is None else cache.state)
        if cache is not None:
            cache.state, cache.length = state, cache.length + inputs.shape[1]
        return logits, cache
