"""Toy distributions and toy MLPs: densities against torch.distributions, moments, seeding."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from book_utils.data.toy import (
    GaussianMixture1D,
    GaussianMixture2D,
    grid_of_gaussians,
    mode_coverage,
    ring_of_gaussians,
)
from book_utils.models.toy_mlp import ToyDiscriminator, ToyGenerator, ToyMLPConfig


def reference_1d(mix: GaussianMixture1D) -> MixtureSameFamily:
    return MixtureSameFamily(Categorical(probs=mix.weights), Normal(mix.means, mix.stds))


def reference_2d(mix: GaussianMixture2D) -> MixtureSameFamily:
    scale = torch.full_like(mix.means, mix.std)
    return MixtureSameFamily(
        Categorical(probs=mix.weights), Independent(Normal(mix.means, scale), 1)
    )


# --- 1-D mixture -----------------------------------------------------------------------------


def test_1d_log_prob_matches_torch_distributions():
    mix = GaussianMixture1D(means=[-2.0, 0.5, 3.0], stds=[0.5, 1.0, 0.3], weights=[1, 2, 1])
    x = torch.linspace(-8, 8, 401)
    expected = reference_1d(mix).log_prob(x)
    torch.testing.assert_close(mix.log_prob(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mix.pdf(x), expected.exp(), rtol=1e-5, atol=1e-7)


def test_1d_weights_are_normalised_and_pdf_integrates_to_one():
    mix = GaussianMixture1D(means=[-1.0, 2.0], stds=[0.4, 0.8], weights=[3, 1])
    torch.testing.assert_close(mix.weights, torch.tensor([0.75, 0.25]))
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    integral = torch.trapezoid(mix.pdf(x).double(), x)
    assert abs(float(integral) - 1.0) < 1e-4


def test_1d_sample_shape_mean_and_variance():
    mix = GaussianMixture1D(means=[-2.0, 2.0], stds=[0.5, 1.0], weights=[0.3, 0.7])
    x = mix.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (200_000,)
    assert x.dtype == torch.float32
    # mean 0.8, variance 0.3*0.25 + 0.7*1 + 0.3*4 + 0.7*4 - 0.64 = 4.135
    assert mix.mean() == pytest.approx(0.8)
    assert mix.variance() == pytest.approx(4.135, rel=1e-6)
    stderr = math.sqrt(mix.variance() / x.numel())
    assert abs(float(x.mean()) - mix.mean()) < 5 * stderr
    assert float(x.var()) == pytest.approx(mix.variance(), rel=0.02)


def test_1d_seeding_reproducible():
    mix = GaussianMixture1D(means=[0.0, 5.0], stds=[1.0, 1.0])
    a = mix.sample(100, generator=torch.Generator().manual_seed(7))
    b = mix.sample(100, generator=torch.Generator().manual_seed(7))
    c = mix.sample(100, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_1d_rejects_bad_parameters():
    with pytest.raises(ValueError):
        GaussianMixture1D(means=[0.0, 1.0], stds=[1.0])
    with pytest.raises(ValueError):
        GaussianMixture1D(means=[0.0], stds=[0.0])
    with pytest.raises(ValueError):
        GaussianMixture1D(means=[0.0, 1.0], stds=[1.0, 1.0], weights=[1.0])


# --- 2-D mixture -----------------------------------------------------------------------------


def test_2d_log_prob_matches_torch_distributions():
    mix = GaussianMixture2D(
        means=[[0.0, 0.0], [1.0, -1.0], [-2.0, 3.0]], std=0.7, weights=[1, 1, 2]
    )
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(1)) * 2
    expected = reference_2d(mix).log_prob(x)
    torch.testing.assert_close(mix.log_prob(x), expected, rtol=1e-5, atol=1e-5)
    # batch dimensions are kept: (4, 125, 2) -> (4, 125)
    assert mix.log_prob(x.reshape(4, 125, 2)).shape == (4, 125)


def test_ring_and_grid_geometry():
    ring = ring_of_gaussians(n_modes=8, radius=2.0, std=0.02)
    assert ring.means.shape == (8, 2)
    torch.testing.assert_close(ring.means.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(ring.means.mean(0), torch.zeros(2), atol=1e-6, rtol=0)
    grid = grid_of_gaussians(side=5, spacing=2.0, std=0.05)
    assert grid.means.shape == (25, 2)
    assert float(grid.means.min()) == -4.0 and float(grid.means.max()) == 4.0
    torch.testing.assert_close(grid.weights, torch.full((25,), 1 / 25))


def test_2d_sample_moments():
    ring = ring_of_gaussians(n_modes=8, radius=2.0, std=0.1)
    x = ring.sample(100_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (100_000, 2)
    # mean 0; per-coordinate variance = radius^2 / 2 + std^2 for a symmetric ring
    assert x.mean(0).abs().max() < 0.03
    torch.testing.assert_close(x.var(0), torch.full((2,), 2.0 + 0.01), rtol=0.02, atol=0)


def test_2d_seeding_reproducible():
    ring = ring_of_gaussians()
    a = ring.sample(50, generator=torch.Generator().manual_seed(3))
    b = ring.sample(50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_2d_rejects_bad_shapes():
    with pytest.raises(ValueError):
        GaussianMixture2D(means=[0.0, 1.0], std=1.0)
    with pytest.raises(ValueError):
        GaussianMixture2D(means=[[0.0, 1.0]], std=-1.0)
    with pytest.raises(ValueError):
        ring_of_gaussians().log_prob(torch.zeros(3, 3))


# --- mode coverage ---------------------------------------------------------------------------


def test_mode_coverage_all_modes():
    ring = ring_of_gaussians(std=0.02)
    x = ring.sample(2000, generator=torch.Generator().manual_seed(0))
    cov = mode_coverage(x, ring)
    assert cov["modes_covered"] == 8
    assert cov["n_modes"] == 8
    assert cov["high_quality"] > 0.97  # a 2-D Gaussian puts 98.9% within 3 std
    assert sum(cov["counts"]) == round(cov["high_quality"] * 2000)
    assert cov["mode_kl"] < 0.01


def test_mode_coverage_one_mode():
    ring = ring_of_gaussians(std=0.02)
    g = torch.Generator().manual_seed(0)
    x = ring.means[3] + ring.std * torch.randn(1000, 2, generator=g)  # (1000, 2) all on mode 3
    cov = mode_coverage(x, ring)
    assert cov["modes_covered"] == 1
    assert cov["counts"][3] == sum(cov["counts"])
    assert cov["mode_kl"] == pytest.approx(math.log(8), abs=1e-5)


def test_mode_coverage_rules():
    ring = ring_of_gaussians(std=0.02)
    far = torch.zeros(1000, 2)  # the centre of the ring is far from every mode
    cov = mode_coverage(far, ring)
    assert cov["modes_covered"] == 0 and cov["high_quality"] == 0.0
    assert cov["mode_kl"] == math.inf
    # 5 points on mode 0 out of 1000 are below the default 1% threshold, 10 are not
    x = far.clone()
    x[:5] = ring.means[0]
    assert mode_coverage(x, ring)["modes_covered"] == 0
    x[:10] = ring.means[0]
    assert mode_coverage(x, ring)["modes_covered"] == 1
    # a point at 2.5 std is high quality under n_std=3, not under n_std=2
    y = ring.means[:1] + torch.tensor([[2.5 * ring.std, 0.0]])
    assert mode_coverage(y, ring, n_std=3.0)["high_quality"] == 1.0
    assert mode_coverage(y, ring, n_std=2.0)["high_quality"] == 0.0
    with pytest.raises(ValueError):
        mode_coverage(torch.zeros(10), ring)


# --- toy MLPs --------------------------------------------------------------------------------


def test_toy_mlp_shapes_and_sampling():
    cfg = ToyMLPConfig(data_dim=2, latent_dim=3, hidden_dim=16, num_hidden=2)
    G, D = ToyGenerator(cfg), ToyDiscriminator(cfg)
    z = torch.randn(5, 3)
    x = G(z)
    assert x.shape == (5, 2)
    assert D(x).shape == (5,)
    a = G.sample(7, generator=torch.Generator().manual_seed(0))
    b = G.sample(7, generator=torch.Generator().manual_seed(0))
    assert a.shape == (7, 2) and torch.equal(a, b) and not a.requires_grad
    d1 = ToyDiscriminator(ToyMLPConfig(data_dim=1, hidden_dim=8, num_hidden=1))
    assert d1(torch.randn(4)).shape == (4,)
    assert d1(torch.randn(4, 1)).shape == (4,)


def test_toy_discriminator_returns_logits_not_probabilities():
    D = ToyDiscriminator(ToyMLPConfig(hidden_dim=8, num_hidden=1))
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in D.modules())


def test_toy_gan_one_step_changes_parameters():
    torch.manual_seed(0)
    cfg = ToyMLPConfig(hidden_dim=16, num_hidden=2)
    G, D = ToyGenerator(cfg), ToyDiscriminator(cfg)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-2)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-2)
    x = ring_of_gaussians().sample(64, generator=torch.Generator().manual_seed(0))
    d_before = [p.clone() for p in D.parameters()]
    g_before = [p.clone() for p in G.parameters()]
    # D step: maximise log D(x) + log(1 - D(G(z)))
    real_logits, fake_logits = D(x), D(G(torch.randn(64, 2)).detach())
    d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    # G step (non-saturating): maximise log D(G(z))
    g_loss = F.softplus(-D(G(torch.randn(64, 2)))).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert all(not torch.equal(a, b) for a, b in zip(d_before, D.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(g_before, G.parameters(), strict=True))


def test_log_prob_keeps_float64_for_precise_integration():
    mix = GaussianMixture1D(means=[-1.0, 1.0], stds=[0.5, 0.5])
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    assert mix.log_prob(x).dtype == torch.float64
    torch.testing.assert_close(mix.log_prob(x).float(), mix.log_prob(x.float()))
    ring = ring_of_gaussians()
    assert ring.log_prob(torch.zeros(3, 2, dtype=torch.float64)).dtype == torch.float64
    assert mix.log_prob(torch.tensor([0])).dtype == torch.float32  # integers become float32


def test_1d_cdf_matches_torch_distributions_and_the_integral_of_the_pdf():
    p = GaussianMixture1D(means=[-2.0, 1.5], stds=[0.5, 0.8], weights=[0.4, 0.6])
    x = torch.linspace(-6, 6, 24_001, dtype=torch.float64)
    reference = MixtureSameFamily(
        Categorical(p.weights.double()), Normal(p.means.double(), p.stds.double())
    ).cdf(x)
    torch.testing.assert_close(p.cdf(x), reference)
    integral = torch.cumulative_trapezoid(p.pdf(x), x)  # from -6, where F is about 0
    assert (integral - p.cdf(x)[1:]).abs().max() < 1e-6
