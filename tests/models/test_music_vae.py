"""MusicVAE: loss terms against hand computations, schedules, slerp, the network's shapes
and independence structure, and the encoder/decoder consistency of a trained tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tunelab.families.music_vae.latent import (
    attribute_vectors,
    average_interval,
    note_density,
    pitch_range,
    slerp,
)
from tunelab.models.components.music_vae import MusicVAE
from tunelab.models.vae_module import (
    MusicVAEModule,
    beta_at,
    eval_sampling_probability,
    kl_cost,
    kl_divergence,
    reconstruction_nll,
    sampling_probability_at,
)


def test_kl_matches_the_closed_form_by_hand():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    sigma = torch.tensor([[1.0, 0.5], [1.0, 1.0]])
    # KL = sum_i 0.5 (mu^2 + s^2 - 1) - ln s: row 0 = 0.5 + (0.5 * (0.25 - 1) + ln 2), row 1 = 0
    want0 = 0.5 + 0.5 * (0.25 - 1.0) + math.log(2.0)
    assert kl_divergence(mu, sigma).tolist() == pytest.approx([want0, 0.0])


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, sigma = torch.randn(4, 16, generator=g), torch.rand(4, 16, generator=g) + 0.1
    q = torch.distributions.Normal(mu, sigma)
    p = torch.distributions.Normal(torch.zeros(16), torch.ones(16))
    want = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(kl_divergence(mu, sigma), want, atol=1e-5)


def test_free_bits_is_a_budget_over_all_of_z_in_bits():
    # 256 free bits = 177.45 nats: a KL of 200 nats costs 22.55, a KL of 100 nats nothing.
    kl = torch.tensor([200.0, 100.0, 256 * math.log(2)])
    assert kl_cost(kl, 256).tolist() == pytest.approx([200 - 256 * math.log(2), 0.0, 0.0], abs=1e-4)
    assert kl_cost(kl, 0).tolist() == pytest.approx(kl.tolist())


def test_beta_and_scheduled_sampling_follow_magentas_formulas():
    assert beta_at(0, 0.2, 0.99999) == 0.0
    assert beta_at(100_000, 0.2, 0.99999) == pytest.approx(0.2 * (1 - 0.99999 ** 100_000))
    assert beta_at(5, 0.2, 0.0) == 0.2  # constant after step 0
    # inverse sigmoid, k = 1000: 1 - k / (k + e^(step/k))
    assert sampling_probability_at(0, "inverse_sigmoid", 1000) == pytest.approx(1 - 1000 / 1001)
    assert sampling_probability_at(7000, "inverse_sigmoid", 1000) == pytest.approx(
        1 - 1000 / (1000 + math.exp(7)))
    assert sampling_probability_at(10**7, "inverse_sigmoid", 1000) == pytest.approx(1.0)
    assert sampling_probability_at(3, "constant", 0.25) == 0.25
    with pytest.raises(ValueError, match="sampling_schedule"):
        sampling_probability_at(0, "linear", 1.0)


def test_loss_is_reconstruction_plus_beta_times_thresholded_kl():
    net = MusicVAE(num_classes=6, bars=1, z_size=4, encoder_size=8, decoder_size=8)
    module = MusicVAEModule(net, lambda p: torch.optim.Adam(p), max_beta=0.5, beta_rate=0.0, free_bits=1)
    labels = torch.randint(0, 6, (3, 16, 1))
    torch.manual_seed(0)
    loss = module._step(labels, "val", 0.0)
    torch.manual_seed(0)
    logits, mu, sigma = net(labels)
    r = reconstruction_nll(logits, labels)
    want = r.mean() + 0.0 * kl_cost(kl_divergence(mu, sigma), 1).mean()  # beta(step 0) = 0
    assert torch.allclose(loss, want)
    # reconstruction is summed over steps: equal to per-step cross-entropy times 16
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 6), labels.reshape(-1))
    assert r.mean().item() == pytest.approx(ce.item() * 16, rel=1e-5)


def test_validation_sampling_probability_follows_magentas_eval_rule():
    # lstm_utils.get_sampling_probability(is_training=False): 0 without a schedule or with a
    # constant 0, otherwise a constant 1 whatever the schedule and rate.
    assert eval_sampling_probability("constant", 0.0) == 0.0
    assert eval_sampling_probability(None, 0.5) == 0.0 and eval_sampling_probability("", 0.5) == 0.0
    assert eval_sampling_probability("constant", 0.25) == 1.0
    assert eval_sampling_probability("inverse_sigmoid", 1000) == 1.0
    assert eval_sampling_probability("exponential", 0.999) == 1.0


def _val_metrics(module: MusicVAEModule, labels: torch.Tensor, seed: int = 0) -> dict[str, float]:
    got: dict[str, float] = {}
    module.log_dict = lambda d, **kw: got.update({k: float(v) for k, v in d.items()})
    torch.manual_seed(seed)
    with torch.no_grad():
        module.validation_step({"labels": labels}, 0)
    return got


def _free_running_r_loss(net: MusicVAE, labels: torch.Tensor, seed: int = 0) -> float:
    """By hand: z ~ q(z|x), then a flat decoder whose step-t input is a sample of its own
    step t-1 output (zeros at t = 0) -- Magenta's ScheduledOutputTrainingHelper at p = 1."""
    torch.manual_seed(seed)
    with torch.no_grad():
        mu, sigma = net.encode(labels)
        z = mu + sigma * torch.randn_like(sigma)
        dec = net.decoders[0]
        state, x, nll = dec.init_state(z), torch.zeros(len(z), 1, dec.num_classes), 0.0
        for t in range(labels.shape[1]):
            out, state = dec.lstm(torch.cat([x, z[:, None]], dim=-1), state)
            logits = dec.out(out[:, 0])
            nll = nll + torch.nn.functional.cross_entropy(logits, labels[:, t, 0], reduction="none")
            y = torch.distributions.Categorical(logits=logits).sample()
            torch.rand(len(z), 1, 1)  # the scheduled-sampling coin, heads at p = 1
            x = torch.nn.functional.one_hot(y, dec.num_classes).float()[:, None]
    return float(nll.mean())


def test_validation_decodes_free_running_under_a_sampling_schedule():
    torch.manual_seed(0)
    net = MusicVAE(num_classes=6, bars=2, z_size=4, encoder_size=8, decoder_size=8).eval()
    for w in net.parameters():  # large weights: the inputs matter, so sampling them shows
        torch.nn.init.normal_(w, std=1.0)
    labels = torch.randint(0, 6, (5, 32, 1))
    opt = lambda p: torch.optim.Adam(p)  # noqa: E731
    scheduled = MusicVAEModule(net, opt, sampling_schedule="inverse_sigmoid", sampling_rate=1000)
    forced = MusicVAEModule(net, opt)  # constant 0: teacher-forced, as before
    ss, tf = _val_metrics(scheduled, labels), _val_metrics(forced, labels)
    assert ss["val/sampling_probability"] == 1.0 and "val/sampling_probability" not in tf
    assert ss["val/r_loss"] == pytest.approx(_free_running_r_loss(net, labels), rel=1e-5)
    assert ss["val/loss"] == pytest.approx(ss["val/r_loss"])  # beta(step 0) = 0
    assert abs(ss["val/r_loss"] - tf["val/r_loss"]) > 0.5  # not the teacher-forced loss (63.5)
    # the same z teacher-forced is logged beside it, and the ELBO is the teacher-forced one
    assert ss["val/r_loss_teacher_forced"] == pytest.approx(tf["val/r_loss"], rel=1e-6)
    assert ss["val/loss_teacher_forced"] == pytest.approx(tf["val/loss"], rel=1e-6)
    assert ss["val/accuracy_teacher_forced"] == pytest.approx(tf["val/accuracy"])
    assert ss["val/elbo"] == pytest.approx(tf["val/elbo"], rel=1e-6)
    # deterministic given the seed (the global RNG, as training's scheduled sampling)
    assert _val_metrics(scheduled, labels) == ss
    assert _val_metrics(scheduled, labels, seed=1)["val/r_loss"] != ss["val/r_loss"]


def test_slerp_endpoints_and_norm():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(32), rng.standard_normal(32)
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    c = 2.0 * a / np.linalg.norm(a)
    d = 2.0 * b / np.linalg.norm(b)
    assert np.linalg.norm(slerp(c, d, 0.37)) == pytest.approx(2.0)  # stays on the sphere
    assert np.allclose(slerp(a, 3 * a, 0.5), 2 * a)  # parallel: linear


@pytest.mark.parametrize("hierarchical,parts", [(False, 1), (True, 1), (True, 3)])
def test_shapes_and_generation(hierarchical, parts):
    net = MusicVAE(num_classes=10, num_parts=parts, bars=4, z_size=8, encoder_size=16,
                   decoder_size=16, hierarchical=hierarchical)
    x = torch.randint(0, 10, (2, 64, parts))
    logits, mu, sigma = net(x)
    assert logits.shape == (2, 64, parts, 10) and mu.shape == sigma.shape == (2, 8)
    assert (sigma > 0).all()
    assert net.decode(mu).shape == (2, 64, parts)
    # scheduled sampling (p = 1) runs step by step and returns the same shape
    assert net.reconstruct(x, mu, sampling_probability=1.0).shape == logits.shape


def test_hierarchical_bars_see_their_own_bar_and_the_last_event_before_it():
    """With the conductor and teacher forcing, bar k's logits depend on bar k's events and
    the previous bar's last one (its first input), nothing else."""
    torch.manual_seed(0)
    net = MusicVAE(num_classes=10, bars=4, z_size=8, encoder_size=16, decoder_size=16, hierarchical=True)
    x = torch.randint(0, 10, (1, 64, 1))
    z = torch.randn(1, 8)
    y = x.clone()
    y[0, 20:30] = (y[0, 20:30] + 1) % 10  # change bar 1 only
    a, b = net.reconstruct(x, z), net.reconstruct(y, z)
    assert torch.equal(a[:, :16], b[:, :16]) and torch.equal(a[:, 32:], b[:, 32:])
    assert not torch.equal(a[:, 16:32], b[:, 16:32])
    w = x.clone()
    w[0, 31] = (w[0, 31] + 1) % 10  # the last event of bar 1 is bar 2's first input
    c = net.reconstruct(w, z)
    assert not torch.equal(a[:, 32:48], c[:, 32:48]) and torch.equal(a[:, 48:], c[:, 48:])
    flat = MusicVAE(num_classes=10, bars=4, z_size=8, encoder_size=16, decoder_size=16)
    assert not torch.equal(flat.reconstruct(x, z)[:, 32:], flat.reconstruct(y, z)[:, 32:])


def test_trio_needs_the_conductor():
    with pytest.raises(ValueError, match="hierarchical"):
        MusicVAE(num_parts=3, hierarchical=False)


def _toy_melodies(n: int = 8) -> torch.Tensor:
    """n distinct 1-bar melodies over 12 classes: 8 random notes, each on its own first note."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        row = np.zeros(16, dtype=np.int64)
        row[::2] = np.r_[2 + i, rng.integers(2, 12, size=7)]
        rows.append(row)
    return torch.as_tensor(np.stack(rows))[..., None]


@pytest.fixture(scope="module")
def trained_tiny():
    torch.manual_seed(0)
    x = _toy_melodies()
    net = MusicVAE(num_classes=12, bars=1, z_size=8, encoder_size=32, decoder_size=32)
    module = MusicVAEModule(net, lambda p: torch.optim.Adam(p, lr=1e-2), max_beta=0.01)
    opt = module.configure_optimizers()
    for _ in range(300):
        logits, mu, sigma = net(x)
        loss = reconstruction_nll(logits, x).mean() + 0.01 * kl_divergence(mu, sigma).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return net, x


def test_encoder_of_a_decoded_sample_maps_near_its_z(trained_tiny):
    net, x = trained_tiny
    with torch.no_grad():
        z = net.encode(x)[0]
        decoded = net.decode(z, greedy=True)
        z2 = net.encode(decoded)[0]
    assert (decoded == x).float().mean() > 0.9  # it learned the toy set
    dist = torch.cdist(z2, z)  # each re-encoding is nearest to its own z, and close to it
    assert torch.equal(dist.argmin(1), torch.arange(len(x)))
    spread = torch.cdist(z, z)[~torch.eye(len(x), dtype=torch.bool)].min()
    assert (dist.diagonal() < 0.5 * spread).all()


class _OneHotMelodies:
    """The slice of MusicVAEEncoding that attribute vectors use: label windows -> events."""

    def decode(self, labels):
        lab = np.asarray(labels)
        return np.where(lab >= 2, lab + 58, lab - 2)  # class c >= 2 -> pitch c + 58


def test_attribute_functions_and_vectors():
    ev = np.array([60, -2, 64, -1, 67, -2, -2, 60])
    assert note_density(ev) == pytest.approx(4 / 8)
    assert pitch_range(ev) == 7.0
    assert average_interval(ev) == pytest.approx((4 + 3 + 7) / 3)
    assert pitch_range(np.array([-2, -2])) == 0.0 and average_interval(np.array([60])) == 0.0
    rng = np.random.default_rng(0)
    x = np.zeros((12, 16, 1), dtype=np.int64)
    for i, every in enumerate([1, 2, 4, 8] * 3):  # densities 1, 1/2, 1/4, 1/8
        x[i, ::every, 0] = rng.integers(2, 12, size=16 // every)
    net = MusicVAE(num_classes=12, bars=1, z_size=8, encoder_size=16, decoder_size=16)
    vectors = attribute_vectors(net, _OneHotMelodies(), x)
    assert set(vectors) == {"note_density", "pitch_range", "average_interval"}
    assert all(v.shape == (8,) and np.isfinite(v).all() for v in vectors.values())


def test_reconstruction_metrics_by_hand(trained_tiny):
    from tunelab.families.music_vae.latent import reconstruction_metrics

    net, x = trained_tiny
    m = reconstruction_metrics(net, x, seed=0)
    assert m["windows"] == len(x)
    assert m["accuracy_majority"] == pytest.approx(0.5)  # every other step is a rest
    assert m["accuracy_teacher_forced"] > 0.9 and m["accuracy_greedy"] > 0.9  # it learned the set
    bits = m["kl_bits_per_window"] * math.log(2)
    assert m["elbo_per_window"] == pytest.approx(-(m["reconstruction_nll_per_window"] + bits))
    assert m["nll_bound_per_step"] == pytest.approx(-m["elbo_per_window"] / 16)


def test_lstms_and_output_layer_start_as_magentas():
    # magenta/models/music_vae/lstm_utils.py rnn_cell: LSTMBlockCell(forget_bias=1.0), glorot kernel
    net = MusicVAE(num_classes=12, bars=2, z_size=8, encoder_size=16, decoder_size=24, hierarchical=True)
    lstms = [m for m in net.modules() if isinstance(m, torch.nn.LSTM)]
    assert len(lstms) == 3  # encoder, conductor, core decoder
    for lstm in lstms:
        H = lstm.hidden_size
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                assert torch.equal(p[H:2 * H], torch.ones(H)), name  # forget gate (i, f, g, o)
                assert not p[:H].any() and not p[2 * H:].any(), name
            elif name.startswith("bias_hh"):
                assert not p.any(), name
            else:
                ih = getattr(lstm, name.replace("weight_hh", "weight_ih"))
                fan = ih.shape[1] + H + 4 * H  # one kernel over [x; h] -> 4H
                assert p.abs().max() <= math.sqrt(6 / fan), name
    out = net.decoders[0].out
    assert not out.bias.any() and out.weight.abs().max() <= math.sqrt(6 / (24 + 12))


def test_sampled_accuracy_is_of_the_argmax_given_sampled_inputs():
    # lstm_models.py CategoricalLstmDecoder._flat_reconstruction_loss: accuracy of argmax(logits),
    # with the inputs sampled (sampling probability 1 at eval), not of the samples themselves
    from tunelab.families.music_vae.latent import reconstruction_metrics

    net = MusicVAE(num_classes=12, bars=1, z_size=8, encoder_size=16, decoder_size=16)
    with torch.no_grad():  # every step: p(class 0) = 0.6, the rest spread over the other 11
        net.decoders[0].out.weight.zero_()
        net.decoders[0].out.bias.copy_(torch.log(torch.tensor([0.6] + [0.4 / 11] * 11)))
    x = torch.zeros(64, 16, 1, dtype=torch.long)
    m = reconstruction_metrics(net, x, seed=0)
    assert m["accuracy_teacher_forced"] == 1.0 and m["accuracy_sampled"] == 1.0
    assert m["accuracy_greedy"] == 1.0
    assert m["accuracy_sample_match"] == pytest.approx(0.6, abs=0.05)
