"""The exercise checks accept right answers and reject wrong ones with a useful message.

Each check is run on a stub, on wrong answers and on a right one. The right answers the
chapters give (their solutions) are run by test_exercise_solutions.py.
"""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torch.nn import functional as F

from book_utils import exercises
from book_utils.losses import discriminator_loss
from book_utils.metrics import fid
from book_utils.models.dcgan import DCGANConfig, DCGANGenerator


def stub(*args, **kwargs):
    raise NotImplementedError("your code here")


def assert_not_yet(result: exercises.CheckResult, *words: str) -> None:
    assert not result and not result.passed, result
    assert result.message.startswith("not yet: "), result.message
    for word in words:
        assert word in result.message, result.message


def test_check_result_shows_its_message_and_is_false_when_failed():
    result = exercises.CheckResult(False, "not yet: x")
    assert repr(result) == "not yet: x" and not result
    assert exercises.CheckResult(True, "correct: y")
    long = exercises.CheckResult(True, "correct: " + "word " * 40)
    assert all(len(line) <= 88 for line in repr(long).splitlines()) and "\n    word" in repr(long)


@pytest.mark.parametrize(
    "check",
    [
        exercises.check_jsd_between_gaussians,
        exercises.check_naive_discriminator_loss,
        exercises.check_parzen_log_density,
        exercises.check_generator_32,
        exercises.check_naive_fid,
        exercises.check_gaussian_kl_general,
        exercises.check_ddim_step,
        exercises.check_gradient_penalty,
        exercises.check_drop_labels,
        exercises.check_project_block_means,
        exercises.check_raster_mask,
    ],
)
def test_a_stub_or_a_crash_is_reported_not_raised(check):
    assert_not_yet(check(stub), "NotImplementedError", "replace the stub")

    def broken(*args):
        return 1 / 0

    assert_not_yet(check(broken), "ZeroDivisionError")


# --------------------------------------------------------------------------- chapter 01
def jsd_on_a_grid(mu: float, scale: float = 1.0) -> float:
    x = torch.linspace(-15, 15 + mu, 60_001, dtype=torch.float64)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    log_p, log_q = normal.log_prob(x), normal.log_prob(x - mu)
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    kl = torch.trapezoid(log_p.exp() * (log_p - log_m) + log_q.exp() * (log_q - log_m), x)
    return scale * 0.5 * kl.item()


def test_check_jsd():
    assert exercises.check_jsd_between_gaussians(jsd_on_a_grid)
    assert exercises.check_jsd_between_gaussians(lambda mu: torch.tensor(jsd_on_a_grid(mu)))
    assert_not_yet(
        exercises.check_jsd_between_gaussians(lambda mu: jsd_on_a_grid(mu, scale=2.0)),
        "jsd_between_gaussians(1)",
    )
    in_bits = exercises.check_jsd_between_gaussians(lambda mu: jsd_on_a_grid(mu) / math.log(2))
    assert_not_yet(in_bits, "nats")
    assert_not_yet(exercises.check_jsd_between_gaussians(lambda mu: None), "NoneType")


def test_reference_jsd_reaches_log_2():
    assert exercises._jsd_unit_gaussians(0.0) == pytest.approx(0.0, abs=1e-12)
    assert exercises._jsd_unit_gaussians(2.0) == pytest.approx(jsd_on_a_grid(2.0), abs=1e-7)
    assert exercises._jsd_unit_gaussians(40.0) == pytest.approx(math.log(2), abs=1e-9)


def test_check_naive_discriminator_loss():
    def naive(real_logits, fake_logits):
        d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
        return -torch.log(d_real).mean() - torch.log(1 - d_fake).mean()

    result = exercises.check_naive_discriminator_loss(naive)
    assert result and "inf" in result.message, result
    assert exercises.check_naive_discriminator_loss(discriminator_loss)  # stable also agrees

    def summed(real_logits, fake_logits):
        d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
        return -torch.log(d_real).sum() - torch.log(1 - d_fake).sum()

    def wrong_sign(real_logits, fake_logits):
        return -naive(real_logits, fake_logits)

    for wrong in (summed, wrong_sign):
        assert_not_yet(exercises.check_naive_discriminator_loss(wrong), "moderate logits")


# --------------------------------------------------------------------------- chapter 02
def parzen(x, centres, sigma, stable=True, with_log_m=True):
    d = x.shape[1]
    sq = torch.cdist(x, centres) ** 2  # float32, as a reader might write it
    log_norm = d / 2 * math.log(2 * math.pi * sigma**2)
    log_norm += math.log(len(centres)) if with_log_m else 0.0
    if stable:
        return torch.logsumexp(-sq / (2 * sigma**2), dim=1) - log_norm
    return torch.log(torch.exp(-sq / (2 * sigma**2)).sum(dim=1)) - log_norm


def test_check_parzen_log_density():
    assert exercises.check_parzen_log_density(parzen)
    assert_not_yet(
        exercises.check_parzen_log_density(lambda x, c, s: parzen(x, c, s, stable=False)),
        "-inf",
        "logsumexp",
    )
    assert_not_yet(
        exercises.check_parzen_log_density(lambda x, c, s: parzen(x, c, s, with_log_m=False)),
        "2-D",
        "log M",
    )
    assert_not_yet(
        exercises.check_parzen_log_density(lambda x, c, s: parzen(x, c, s).mean()),
        "shape (5,)",
    )


# --------------------------------------------------------------------------- chapter 03
class Generator32(nn.Module):
    """A DCGAN generator for 32 x 32 images, with switches that break one rule each."""

    def __init__(
        self,
        latent_dim: int,
        size: int = 32,
        tanh: bool = True,
        output_norm: bool = False,
        pooling: bool = False,
        hidden_linear: bool = False,
    ) -> None:
        super().__init__()
        c, start = 16, size // 8
        self.start, self.c = start, c
        project = [nn.Linear(latent_dim, 4 * c * start * start)]
        if hidden_linear:
            project += [nn.ReLU(), nn.Linear(4 * c * start * start, 4 * c * start * start)]
        self.project = nn.Sequential(*project)
        last = nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1)
        if pooling:  # upsample twice as far, then pool back: the same shape, a pooling layer
            last = nn.Sequential(nn.ConvTranspose2d(c, 1, 6, stride=4, padding=1), nn.AvgPool2d(2))
        layers = [
            nn.BatchNorm2d(4 * c),
            nn.ReLU(),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, stride=2, padding=1),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            last,
        ]
        layers += [nn.BatchNorm2d(1)] if output_norm else []
        layers += [nn.Tanh()] if tanh else []
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(self.project(z).view(-1, 4 * self.c, self.start, self.start))


def test_check_generator_32():
    result = exercises.check_generator_32(Generator32)
    assert result, result
    assert_not_yet(
        exercises.check_generator_32(lambda d: DCGANGenerator(DCGANConfig(latent_dim=d))),
        "(4, 1, 28, 28)",
    )
    assert_not_yet(exercises.check_generator_32(lambda d: Generator32(d, tanh=False)), "tanh")
    assert_not_yet(
        exercises.check_generator_32(lambda d: Generator32(d, output_norm=True)), "output layer"
    )
    assert_not_yet(
        exercises.check_generator_32(lambda d: Generator32(d, pooling=True)), "AvgPool2d"
    )
    assert_not_yet(
        exercises.check_generator_32(lambda d: Generator32(d, hidden_linear=True)), "nn.Linear"
    )
    assert_not_yet(exercises.check_generator_32(lambda d: "not a module"), "nn.Module")


# --------------------------------------------------------------------------- chapter 05
def naive_fid(features_a, features_b, trace_term=True):
    a, b = features_a.double().numpy(), features_b.double().numpy()
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    value = ((a.mean(0) - b.mean(0)) ** 2).sum()
    if trace_term:
        root = scipy.linalg.sqrtm(sigma_a @ sigma_b).real
        value += np.trace(sigma_a + sigma_b - 2 * root)
    return float(value)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_check_naive_fid():
    assert exercises.check_naive_fid(naive_fid)
    assert exercises.check_naive_fid(fid)
    assert_not_yet(
        exercises.check_naive_fid(lambda a, b: naive_fid(a, b, trace_term=False)), "naive_fid gives"
    )
    assert_not_yet(exercises.check_naive_fid(lambda a, b: None), "NoneType")


# --------------------------------------------------------------------------- chapter 04
def kl_diagonal(mu1, logvar1, mu2, logvar2, mean_term=True):
    ratio = torch.exp(logvar1 - logvar2)
    mean = (mu1 - mu2).pow(2) / torch.exp(logvar2) if mean_term else 0.0
    return 0.5 * (ratio + mean - 1.0 - (logvar1 - logvar2)).sum(-1)


def test_check_gaussian_kl_general():
    assert exercises.check_gaussian_kl_general(kl_diagonal)
    assert_not_yet(
        exercises.check_gaussian_kl_general(
            lambda a, b, c, d: kl_diagonal(a, b, c, d, mean_term=False)
        ),
        "torch.distributions gives",
    )
    assert_not_yet(  # the KL the other way round, a classic slip
        exercises.check_gaussian_kl_general(lambda a, b, c, d: kl_diagonal(c, d, a, b)),
        "torch.distributions gives",
    )
    assert_not_yet(  # summed over the wrong axis
        exercises.check_gaussian_kl_general(lambda a, b, c, d: kl_diagonal(a, b, c, d)[None]),
        "shape",
    )


# --------------------------------------------------------------------------- chapter 06
def ddim_step(x_t, eps_hat, abar_t, abar_prev):
    x0_hat = (x_t - math.sqrt(1 - abar_t) * eps_hat) / math.sqrt(abar_t)
    return math.sqrt(abar_prev) * x0_hat + math.sqrt(1 - abar_prev) * eps_hat


def test_check_ddim_step():
    assert exercises.check_ddim_step(ddim_step)
    assert_not_yet(
        exercises.check_ddim_step(lambda x, e, a, b: ddim_step(x, e, b, a)), "off by up to"
    )
    assert_not_yet(exercises.check_ddim_step(lambda x, e, a, b: x), "off by up to")
    assert_not_yet(exercises.check_ddim_step(lambda x, e, a, b: x[0]), "shape")


# --------------------------------------------------------------------------- chapter 07
def test_check_gradient_penalty():
    def right(critic, x_real, x_fake, eps):
        eps = eps.view(-1, *[1] * (x_real.dim() - 1))
        x_hat = (eps * x_real + (1 - eps) * x_fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

    assert exercises.check_gradient_penalty(right)

    def no_graph(critic, x_real, x_fake, eps):
        eps = eps.view(-1, *[1] * (x_real.dim() - 1))
        x_hat = (eps * x_real + (1 - eps) * x_fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

    assert_not_yet(exercises.check_gradient_penalty(no_graph), "create_graph")

    def squared_norm(critic, x_real, x_fake, eps):  # forgets the - 1
        eps = eps.view(-1, *[1] * (x_real.dim() - 1))
        x_hat = (eps * x_real + (1 - eps) * x_fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return grad.flatten(1).norm(dim=1).pow(2).mean()

    assert_not_yet(exercises.check_gradient_penalty(squared_norm), "16")

    def per_pixel(critic, x_real, x_fake, eps):  # a norm per pixel, not per image
        eps = eps.view(-1, *[1] * (x_real.dim() - 1))
        x_hat = (eps * x_real + (1 - eps) * x_fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return (
            (grad.abs() - 1).pow(2).mean()
            if x_real.dim() > 2
            else right(critic, x_real, x_fake, eps.flatten())
        )

    assert_not_yet(exercises.check_gradient_penalty(per_pixel), "one gradient norm per image")


def drop_labels(y, p, null):
    drop = torch.rand(len(y)) < p
    return torch.where(drop, null, y)


def test_check_drop_labels():
    assert exercises.check_drop_labels(drop_labels)
    assert_not_yet(exercises.check_drop_labels(lambda y, p, null: y), "became null")
    assert_not_yet(
        exercises.check_drop_labels(lambda y, p, null: drop_labels(y, 0.5, null)), "became null"
    )

    def in_place(y, p, null):
        y[torch.rand(len(y)) < p] = null
        return y

    assert_not_yet(exercises.check_drop_labels(in_place), "in place")
    assert_not_yet(exercises.check_drop_labels(lambda y, p, null: y[:5]), "shaped")


# --------------------------------------------------------------------------- chapter 09
def project_block_means(x, y_low, factor):
    change = y_low - F.avg_pool2d(x, factor)
    return x + F.interpolate(change, scale_factor=factor, mode="nearest")


def test_check_project_block_means():
    assert exercises.check_project_block_means(project_block_means)
    assert_not_yet(  # right means, but not the nearest such image: a bilinear spread
        exercises.check_project_block_means(
            lambda x, y, f: (
                x + F.interpolate(y - F.avg_pool2d(x, f), scale_factor=f, mode="bilinear")
            )
        ),
        "block means",
    )
    assert_not_yet(  # the block means alone, upsampled: right means, far from x
        exercises.check_project_block_means(
            lambda x, y, f: F.interpolate(y, scale_factor=f, mode="nearest")
        ),
        "not the nearest",
    )
    assert_not_yet(exercises.check_project_block_means(lambda x, y, f: y), "shape")


def raster_mask(k, include_centre):
    mask = torch.zeros(k, k)
    mask[: k // 2] = 1
    mask[k // 2, : k // 2 + int(include_centre)] = 1
    return mask


def test_check_raster_mask():
    assert exercises.check_raster_mask(raster_mask)
    assert_not_yet(exercises.check_raster_mask(lambda k, c: raster_mask(k, not c)), "differs")
    assert_not_yet(exercises.check_raster_mask(lambda k, c: torch.ones(k, k)), "differs")
    assert_not_yet(exercises.check_raster_mask(lambda k, c: raster_mask(k, c)[0]), "shape")
