"""The VAE of chapter 04: its network, its objectives and the log-likelihood estimator.

Each objective is checked against an independent reference (torch.distributions, or the
formula written out by hand); the bounds against what the theory says they must do.
"""

import math

import pytest
import torch

from book_utils.data import binarize, to_unit
from book_utils.losses import (
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_density,
    iwae_bound,
)
from book_utils.metrics.likelihood import estimate_log_likelihood
from book_utils.models.vae import VAE, VAEConfig, reparameterise

SMALL = VAEConfig(latent_dim=4, hidden=(32, 16))


@pytest.fixture
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE(SMALL)


@pytest.fixture
def x() -> torch.Tensor:
    """Eight fixed binary 'images' with some structure (a bright centre)."""
    probs = torch.full((8, 1, 28, 28), 0.1)
    probs[:, :, 8:20, 10:18] = 0.8
    return binarize(probs, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------- the network
def test_shapes(vae, x):
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (8, 4)
    assert vae.decode(mu).shape == (8, 1, 28, 28)
    assert vae.decode(torch.zeros(3, 8, 4)).shape == (3, 8, 1, 28, 28)  # leading sample axis
    samples = vae.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 28, 28)
    assert samples.min() >= 0 and samples.max() <= 1 and not samples.requires_grad


def test_sample_is_reproducible_with_a_generator(vae):
    a = vae.sample(4, generator=torch.Generator().manual_seed(3))
    b = vae.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_reparameterised_sample_has_the_right_mean_and_variance():
    mu = torch.tensor([1.0, -2.0, 0.5])
    logvar = torch.tensor([0.0, math.log(4.0), math.log(0.25)])
    z = reparameterise(
        mu.expand(200_000, 3), logvar.expand(200_000, 3), torch.Generator().manual_seed(0)
    )
    assert torch.allclose(z.mean(0), mu, atol=0.02)
    assert torch.allclose(z.var(0), logvar.exp(), rtol=0.02)


def test_gradients_flow_through_the_reparameterised_sample():
    mu = torch.zeros(5, requires_grad=True)
    logvar = torch.zeros(5, requires_grad=True)
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(0))
    z.pow(2).sum().backward()
    assert mu.grad is not None and logvar.grad is not None
    assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0


# --------------------------------------------------------------------------- the objectives
def test_closed_form_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_bernoulli_log_likelihood_against_the_formula():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 28, 28, generator=gen)
    x = binarize(torch.full((3, 1, 28, 28), 0.5), generator=gen)
    p = torch.sigmoid(logits)
    expected = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), expected, atol=1e-3)
    # extreme logits stay finite
    extreme = torch.full((1, 1, 28, 28), 200.0)
    assert torch.isfinite(bernoulli_log_likelihood(extreme, torch.zeros(1, 1, 28, 28))).all()


def test_gaussian_log_density_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    z, mu, logvar = (torch.randn(4, 3, generator=gen) for _ in range(3))
    expected = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_density(z, mu, logvar), expected, atol=1e-5)


def test_one_sample_bound_averages_to_the_elbo(vae, x):
    """E[L_1] is the ELBO: E_q[log p(x|z)] - KL, with the KL in closed form."""
    with torch.no_grad():
        l1 = torch.stack(
            [iwae_bound(vae, x, 1, torch.Generator().manual_seed(s)) for s in range(400)]
        ).mean(0)
        mu, logvar = vae.encode(x)
        gen = torch.Generator().manual_seed(999)
        recon = torch.stack(
            [
                bernoulli_log_likelihood(vae.decode(reparameterise(mu, logvar, gen)), x)
                for _ in range(400)
            ]
        ).mean(0)
        elbo = recon - gaussian_kl(mu, logvar)
    assert torch.allclose(l1, elbo, atol=0.5)


@pytest.fixture(scope="module")
def fitted() -> tuple[VAE, torch.Tensor]:
    """A small VAE fitted for a few hundred steps to 64 binary images with structure, so
    that its codes carry information and the bounds L_K differ visibly."""
    gen = torch.Generator().manual_seed(0)
    probs = torch.full((64, 1, 28, 28), 0.05)
    for i in range(64):  # bright squares of four sizes
        side = 6 + 4 * (i % 4)
        probs[i, :, 4 : 4 + side, 4 : 4 + side] = 0.9
    x = binarize(probs, generator=gen)
    torch.manual_seed(0)
    vae = VAE(SMALL)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    for _ in range(300):
        loss = -iwae_bound(vae, x, 1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return vae.eval(), x


def test_the_bound_is_above_the_elbo_and_grows_with_k(fitted):
    vae, x = fitted
    means = [
        estimate_log_likelihood(
            vae, x, k, chunk_size=250, generator=torch.Generator().manual_seed(0)
        ).mean()
        for k in (1, 10, 100, 1000)
    ]
    for smaller, larger in zip(means, means[1:], strict=False):
        assert larger > smaller
    assert means[-1] - means[0] > 0.5  # nats: the gap the importance weights close


def test_chunked_estimate_agrees_with_one_chunk(vae, x):
    one = estimate_log_likelihood(vae, x, 400, chunk_size=400, generator=torch.Generator())
    many = estimate_log_likelihood(vae, x, 400, chunk_size=37, generator=torch.Generator())
    assert one.dtype == torch.float64 and one.shape == (8,)
    assert torch.allclose(one, many, atol=0.3)


def test_estimate_refuses_bad_input(vae):
    with pytest.raises(ValueError, match="binary"):
        estimate_log_likelihood(vae, torch.full((2, 1, 28, 28), 0.5), 5)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        estimate_log_likelihood(vae, torch.zeros(2, 784), 5)
    with pytest.raises(ValueError, match="num_samples"):
        iwae_bound(vae, torch.zeros(2, 1, 28, 28), 0)


def test_one_step_lowers_the_loss_on_a_fixed_batch(vae, x):
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:  # -ELBO with fixed noise, so before and after are comparable
        return -iwae_bound(vae, x, 1, torch.Generator().manual_seed(5)).mean()

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    after = loss()
    assert torch.isfinite(before) and after < before


# --------------------------------------------------------------------------- the data
def test_binarize_draws_pixels_with_their_grey_level():
    p = torch.full((200, 1, 28, 28), 0.3)
    x = binarize(p, generator=torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert x.mean().item() == pytest.approx(0.3, abs=0.005)
    again = binarize(p, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


def test_to_unit_and_binarize_refuse_the_wrong_dtype():
    images = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert torch.equal(to_unit(images), torch.tensor([[[[0.0, 1.0]]]]))
    with pytest.raises(TypeError, match="uint8"):
        to_unit(images.float())
    with pytest.raises(TypeError, match="to_unit"):
        binarize(images)
