"""MusicVAE (Roberts et al., ICML 2018): a bidirectional LSTM encoder to a diagonal
Gaussian latent, and a categorical LSTM decoder -- flat, or hierarchical under a
"conductor" that emits one embedding per bar.

Follows magenta/models/music_vae/lstm_models.py: ``sigma = softplus(dense(h))``; decoder
states start at ``tanh(dense(embedding))`` (weights N(0, 0.001)) and the embedding is
concatenated to every decoder input; the window's first decoder input is all zeros, a
bar's first input the previous bar's last event. Every LSTM starts as Magenta's
``LSTMBlockCell`` (glorot-uniform kernel, zero bias plus forget bias 1) and the output
projection as a ``tf.layers.Dense`` (glorot-uniform, zero bias). The conductor runs on zero inputs
(``disable_autoregression=True``), so with teacher forcing every bar decodes on its own
-- here all bars in one batch, which is what makes training fast. A trio has one core
decoder per part under the shared conductor (``SplitMultiOutLstmDecoder``), each fed its
own part's previous output only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tunelab.models.components.sampling import scale_logits
from tunelab.models.components.tf_init import tf_linear_, tf_lstm_

LSTMState = tuple[torch.Tensor, torch.Tensor]


def _small_normal(layer: nn.Linear) -> nn.Linear:
    nn.init.normal_(layer.weight, std=0.001)  # Magenta: random_normal_initializer(stddev=0.001)
    nn.init.zeros_(layer.bias)
    return layer


class StateFromEmbedding(nn.Module):
    """An LSTM's initial (h, c) for every layer from an embedding: ``tanh(W e + b)``
    (lstm_utils.initial_cell_state_from_embedding)."""

    def __init__(self, embedding_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.proj = _small_normal(nn.Linear(embedding_size, 2 * num_layers * hidden_size))

    def forward(self, e: torch.Tensor) -> LSTMState:
        s = torch.tanh(self.proj(e)).view(e.shape[0], 2, self.num_layers, self.hidden_size)
        return s[:, 0].transpose(0, 1).contiguous(), s[:, 1].transpose(0, 1).contiguous()


class BidirectionalLstmEncoder(nn.Module):
    """Stacked bidirectional LSTM; the top layer's final forward and backward states,
    concatenated, give ``mu`` and ``sigma = softplus(.)`` of q(z|x)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, z_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, bidirectional=True)
        self.mu = _small_normal(nn.Linear(2 * hidden_size, z_size))
        self.sigma = _small_normal(nn.Linear(2 * hidden_size, z_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, (h, _) = self.lstm(x)  # h: (layers * 2, B, H), top layer last
        e = torch.cat([h[-2], h[-1]], dim=-1)
        return self.mu(e), F.softplus(self.sigma(e))


class Conductor(nn.Module):
    """The hierarchical level: z -> one embedding per bar, an LSTM run on zero inputs."""

    def __init__(self, z_size: int, hidden_size: int, num_layers: int, num_bars: int) -> None:
        super().__init__()
        self.num_bars = num_bars
        self.init_state = StateFromEmbedding(z_size, hidden_size, num_layers)
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        zeros = z.new_zeros(z.shape[0], self.num_bars, 1)
        out, _ = self.lstm(zeros, self.init_state(z))
        return out  # (B, bars, H)


class CategoricalLstmDecoder(nn.Module):
    """Autoregressive LSTM over one melody line, conditioned on an embedding ``c``:
    input at step t is [one-hot of event t-1 (zeros at t=0), c]."""

    def __init__(self, num_classes: int, cond_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.init_state = StateFromEmbedding(cond_size, hidden_size, num_layers)
        self.lstm = nn.LSTM(num_classes + cond_size, hidden_size, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, num_classes)

    def _inputs(self, prev: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.cat([prev, c[:, None, :].expand(-1, prev.shape[1], -1)], dim=-1)

    def teacher_forced(self, targets: torch.Tensor, prev: torch.Tensor, c: torch.Tensor,
                       sampling_probability: float = 0.0) -> torch.Tensor:
        """Logits (N, T, C) for label targets (N, T) given the one-hot inputs ``prev``
        (N, T, C): the true previous events. With ``sampling_probability`` p > 0, each
        later step's input is, with probability p, a sample from the previous step's output
        instead (scheduled sampling, Bengio et al. 2015)."""
        state = self.init_state(c)
        if sampling_probability <= 0.0:
            out, _ = self.lstm(self._inputs(prev, c), state)
            return self.out(out)
        logits = []
        x = prev[:, :1]
        for t in range(targets.shape[1]):
            out, state = self.lstm(self._inputs(x, c), state)
            step = self.out(out)
            logits.append(step)
            if t + 1 < targets.shape[1]:
                with torch.no_grad():
                    sampled = F.one_hot(torch.distributions.Categorical(logits=step[:, 0]).sample(),
                                        self.num_classes).float()[:, None]
                    use = torch.rand(targets.shape[0], 1, 1, device=targets.device) < sampling_probability
                x = torch.where(use, sampled, prev[:, t + 1:t + 2])
        return torch.cat(logits, dim=1)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, num_steps: int, temperature: float = 1.0, greedy: bool = False,
               start: torch.Tensor | None = None) -> torch.Tensor:
        """Labels (N, num_steps) decoded from ``c``, each step fed back as the next input;
        the first input is ``start`` (labels (N,), the previous bar's last) or zeros."""
        state = self.init_state(c)
        if start is None:
            x = c.new_zeros(c.shape[0], 1, self.num_classes)
        else:
            x = F.one_hot(start, self.num_classes).float()[:, None]
        labels = []
        for _ in range(num_steps):
            out, state = self.lstm(self._inputs(x, c), state)
            logits = self.out(out[:, 0])
            if greedy:
                y = logits.argmax(-1)
            else:
                y = torch.distributions.Categorical(logits=scale_logits(logits, temperature)).sample()
            labels.append(y)
            x = F.one_hot(y, self.num_classes).float()[:, None]
        return torch.stack(labels, dim=1)


class MusicVAE(nn.Module):
    """Encoder, latent and (hierarchical) decoder over ``(B, bars * steps_per_bar, num_parts)``
    label windows.

    Args:
        num_classes: Classes per part and step (90: MIDI 21..108, NO_EVENT, NOTE_OFF).
        num_parts: Melody lines per step (1 for melodies, 3 for the trio).
        bars: Window length in bars.
        z_size: Latent size.
        encoder_size, encoder_layers: Bidirectional LSTM units per direction and layers.
        decoder_size, decoder_layers: Core decoder (and conductor) LSTM units and layers.
        hierarchical: Put a conductor between z and the core decoder(s), one embedding per
            bar; otherwise the decoder reads the whole window conditioned on z.
    """

    def __init__(self, num_classes: int = 90, num_parts: int = 1, bars: int = 2,
                 steps_per_bar: int = 16, z_size: int = 256, encoder_size: int = 512,
                 encoder_layers: int = 1, decoder_size: int = 256, decoder_layers: int = 2,
                 hierarchical: bool = False) -> None:
        super().__init__()
        if num_parts > 1 and not hierarchical:
            raise ValueError("a multi-part MusicVAE needs hierarchical=true (a shared conductor)")
        self.num_classes, self.num_parts, self.bars = num_classes, num_parts, bars
        self.steps_per_bar, self.z_size, self.hierarchical = steps_per_bar, z_size, hierarchical
        self.window_steps = bars * steps_per_bar
        self.encoder = BidirectionalLstmEncoder(num_parts * num_classes, encoder_size, encoder_layers, z_size)
        self.conductor = Conductor(z_size, decoder_size, decoder_layers, bars) if hierarchical else None
        cond = decoder_size if hierarchical else z_size
        self.decoders = nn.ModuleList(CategoricalLstmDecoder(num_classes, cond, decoder_size, decoder_layers)
                                      for _ in range(num_parts))
        # magenta/models/music_vae/lstm_utils.py rnn_cell: LSTMBlockCell (glorot kernel, forget_bias=1)
        for m in self.modules():
            if isinstance(m, nn.LSTM):
                tf_lstm_(m)
        for dec in self.decoders:
            tf_linear_(dec.out)  # lstm_models.py output_projection: a tf.layers.Dense

    def encode(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mu`` and ``sigma`` (B, z_size) of q(z | labels (B, T, P))."""
        x = F.one_hot(labels, self.num_classes).float().flatten(2)
        return self.encoder(x)

    def _conditions(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder embeddings (B, S, E), one per segment: each bar, or the whole window."""
        return z[:, None] if self.conductor is None else self.conductor(z)

    def reconstruct(self, labels: torch.Tensor, z: torch.Tensor,
                    sampling_probability: float = 0.0) -> torch.Tensor:
        """Logits (B, T, P, C) of the targets ``labels`` decoded from ``z`` with teacher
        forcing (or scheduled sampling). Inputs are the window shifted by one step, then cut
        into segments, so a bar's first input is the previous bar's last event (Magenta's
        HierarchicalLstmDecoder.reconstruction_loss); segments run as one batch."""
        B, T, P = labels.shape
        c = self._conditions(z)
        S = c.shape[1]
        onehot = F.one_hot(labels, self.num_classes).float()
        prev = F.pad(onehot[:, :-1], (0, 0, 0, 0, 1, 0))  # zeros at t = 0
        seg = labels.reshape(B * S, T // S, P)
        seg_prev = prev.reshape(B * S, T // S, P, self.num_classes)
        c = c.flatten(0, 1)
        logits = [dec.teacher_forced(seg[..., p], seg_prev[:, :, p], c, sampling_probability)
                  for p, dec in enumerate(self.decoders)]
        return torch.stack(logits, dim=2).reshape(B, T, P, self.num_classes)

    def forward(self, labels: torch.Tensor, sampling_probability: float = 0.0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (B, T, P, C) with z drawn from q(z|x) by reparameterization, ``mu``, ``sigma``."""
        mu, sigma = self.encode(labels)
        z = mu + sigma * torch.randn_like(sigma)
        return self.reconstruct(labels, z, sampling_probability), mu, sigma

    @torch.no_grad()
    def decode(self, z: torch.Tensor, temperature: float = 1.0, greedy: bool = False) -> torch.Tensor:
        """Labels (B, T, P) generated from ``z`` without teacher forcing, segment after
        segment, each starting from the previous one's last output."""
        c = self._conditions(z)
        steps = self.window_steps // c.shape[1]
        parts = []
        for dec in self.decoders:
            segments, last = [], None
            for k in range(c.shape[1]):
                segments.append(dec.sample(c[:, k], steps, temperature, greedy, start=last))
                last = segments[-1][:, -1]
            parts.append(torch.cat(segments, dim=1))
        return torch.stack(parts, dim=-1)
