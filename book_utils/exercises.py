"""Checks for the coding exercises at the end of the chapters.

Each coding exercise gives the reader a function (or class) to write, which starts out as
a stub that raises ``NotImplementedError``, and a check cell below it::

    from book_utils.exercises import check_parzen_log_density

    check_parzen_log_density(parzen_log_density)

A check runs the reader's code on test inputs and compares it with a reference. It never
raises, so a chapter with unanswered exercises still runs from top to bottom: it returns a
:class:`CheckResult`, which a notebook shows as one message, ``correct: ...`` or
``not yet: ...`` with what went wrong. ``bool(result)`` says whether the answer passed.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from book_utils.data.toy import LOG_2PI
from book_utils.losses import discriminator_loss, gaussian_kl
from book_utils.metrics.core import fid, parzen_log_likelihood
from book_utils.models.dcgan_rules import generator_rule_violations

__all__ = [
    "CheckResult",
    "check_gaussian_kl_general",
    "check_generator_32",
    "check_jsd_between_gaussians",
    "check_naive_discriminator_loss",
    "check_naive_fid",
    "check_parzen_log_density",
    "check_ddim_step",
    "check_gradient_penalty",
    "check_drop_labels",
    "check_project_block_means",
    "check_raster_mask",
]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: ``passed`` and a message that says why."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:  # what a notebook shows as the cell's output, wrapped
        return textwrap.fill(self.message, width=88, subsequent_indent="    ")


class _NotYet(Exception):
    """Stops a check with a 'not yet' message (never escapes this module)."""


def _run(check: Callable[[], str]) -> CheckResult:
    """Run a check body; its return value is the success message, _NotYet a failure."""
    try:
        return CheckResult(True, "correct: " + check())
    except _NotYet as failure:
        return CheckResult(False, f"not yet: {failure}")


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the reader's code, turning any exception into a 'not yet' with its message."""
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise _NotYet(
            f"{name} still raises NotImplementedError: replace the stub with your code"
        ) from None
    except Exception as error:  # the reader's bug, reported instead of raised
        raise _NotYet(f"{name} raised {type(error).__name__}: {error}") from None


def _as_float(value: Any, what: str) -> float:
    """A Python float from a number or a one-element tensor or array; 'not yet' otherwise."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, np.ndarray | np.generic) and np.size(value) == 1:
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _NotYet(f"{what} should return a number, got {type(value).__name__}")


def _as_tensor(value: Any, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A float64 tensor of the given shape; 'not yet' otherwise."""
    if not isinstance(value, torch.Tensor):
        raise _NotYet(f"{what} should be a torch.Tensor, got {type(value).__name__}")
    if tuple(value.shape) != shape:
        raise _NotYet(f"{what} should have shape {shape}, got {tuple(value.shape)}")
    return value.detach().double()


# --------------------------------------------------------------------------- chapter 01
def _jsd_unit_gaussians(mu: float) -> float:
    """JSD(N(0, 1) || N(mu, 1)) in nats, by adaptive quadrature (scipy), as the reference."""
    from scipy import integrate

    def integrand(x: float) -> float:
        log_p = -0.5 * x**2 - 0.5 * LOG_2PI
        log_q = -0.5 * (x - mu) ** 2 - 0.5 * LOG_2PI
        log_m = np.logaddexp(log_p, log_q) - math.log(2)
        return 0.5 * (math.exp(log_p) * (log_p - log_m) + math.exp(log_q) * (log_q - log_m))

    value, _ = integrate.quad(integrand, -15, 15 + mu, points=[0.0, mu], limit=200)
    return value


def check_jsd_between_gaussians(jsd_between_gaussians: Callable[[float], float]) -> CheckResult:
    """Chapter 01: ``jsd_between_gaussians(mu)`` = JSD(N(0, 1) || N(mu, 1)) in nats."""

    def check() -> str:
        answers = {}
        for mu in (0.0, 1.0, 2.0, 4.0, 8.0):
            got = _as_float(_call(jsd_between_gaussians, mu), f"jsd_between_gaussians({mu:g})")
            expected = _jsd_unit_gaussians(mu)
            if not abs(got - expected) < 1e-3:
                raise _NotYet(
                    f"jsd_between_gaussians({mu:g}) returned {got:.5f}, expected {expected:.5f} "
                    "(nats, natural logarithms)"
                )
            answers[mu] = got
        values = ", ".join(f"mu={mu:g}: {v:.4f}" for mu, v in answers.items())
        return f"{values}; log 2 = {math.log(2):.4f}"

    return _run(check)


def check_naive_discriminator_loss(
    naive_discriminator_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> CheckResult:
    """Chapter 01: the discriminator loss computed through probabilities, sigmoid then log."""

    def check() -> str:
        rng = torch.Generator().manual_seed(0)
        real_logits, fake_logits = 3 * torch.randn(2, 64, generator=rng)  # (64,), (64,)
        got = _as_float(
            _call(naive_discriminator_loss, real_logits, fake_logits),
            "naive_discriminator_loss(real_logits, fake_logits)",
        )
        expected = discriminator_loss(real_logits, fake_logits).item()
        if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-5):
            raise _NotYet(
                f"on moderate logits your loss is {got:.5f}, discriminator_loss gives "
                f"{expected:.5f}: return -(mean of log D(x)) - (mean of log(1 - D(G(z))))"
            )
        sure_and_wrong = torch.tensor([-200.0, 1.0]), torch.tensor([200.0, -1.0])
        naive = _as_float(
            _call(naive_discriminator_loss, *sure_and_wrong), "naive_discriminator_loss(...)"
        )
        stable = discriminator_loss(*sure_and_wrong).item()
        return (
            f"the two agree on moderate logits ({expected:.4f}); on real logits -200 and fake "
            f"logits +200 your loss gives {naive}, discriminator_loss gives {stable:.1f}"
        )

    return _run(check)


# --------------------------------------------------------------------------- chapter 02
def check_parzen_log_density(
    parzen_log_density: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
) -> CheckResult:
    """Chapter 02: ``parzen_log_density(x, centres, sigma)``, log p(x) of each row, in nats."""

    def compare(x: torch.Tensor, centres: torch.Tensor, sigma: float, where: str) -> None:
        got = _as_tensor(
            _call(parzen_log_density, x, centres, sigma),
            f"parzen_log_density(x, centres, sigma) for x of shape {tuple(x.shape)}",
            (len(x),),
        )
        expected = parzen_log_likelihood(x, centres, sigma)  # (N,) float64
        if torch.isneginf(got).any() and torch.isfinite(expected).all():
            raise _NotYet(
                f"{where} your function returns -inf: each kernel value "
                "exp(-||x - c||^2 / 2 sigma^2) underflows to 0. Work with logarithms: "
                "torch.logsumexp adds exponentials without computing them."
            )
        error = (got - expected).abs().max().item()
        if not error <= 0.05 + 1e-6 * expected.abs().max().item():
            i = (got - expected).abs().argmax().item()
            raise _NotYet(
                f"{where} row {i} gets {got[i].item():.4f} nats, expected "
                f"{expected[i].item():.4f}; check the -log M and -d/2 log(2 pi sigma^2) terms"
            )

    def check() -> str:
        rng = torch.Generator().manual_seed(0)
        x, centres = torch.randn(5, 2, generator=rng), torch.randn(7, 2, generator=rng)
        compare(x, centres, 1.0, "on a small 2-D example,")  # (5, 2) points, (7, 2) centres
        x = torch.rand(6, 784, generator=rng)  # (6, 784) "images" with pixels in [0, 1]
        centres = torch.rand(50, 784, generator=rng)  # (50, 784)
        compare(x, centres, 0.1, "in 784 dimensions with sigma = 0.1,")
        return "your estimate matches book_utils.metrics.parzen_log_likelihood, in 2-D and in 784-D"

    return _run(check)


# --------------------------------------------------------------------------- chapter 03
def check_generator_32(make_generator: Callable[[int], nn.Module]) -> CheckResult:
    """Chapter 03: ``make_generator(latent_dim)`` builds a DCGAN generator for 32 x 32 images.

    Checked: shapes (B, latent_dim) -> (B, 1, 32, 32) in training and eval mode, then the
    design rules as :func:`book_utils.models.dcgan_rules.generator_rule_violations` sees them:
    outputs in [-1, 1] even for very large z (a tanh output); upsampling by strided
    transposed convolutions, no pooling or fixed upsampling; batch norm, but not on the
    output layer; ReLU activations; at most one fully connected layer (the projection of z).
    """

    def check() -> str:
        rng = torch.Generator().manual_seed(0)
        for latent_dim in (64, 16):
            G = _call(make_generator, latent_dim)
            if not isinstance(G, nn.Module):
                raise _NotYet(f"expected an nn.Module, got {type(G).__name__}")
            z = torch.randn(4, latent_dim, generator=rng)  # (4, latent_dim)
            for mode in ("train", "eval"):
                G.train(mode == "train")
                with torch.no_grad():
                    x = _call(G, z)
                if not isinstance(x, torch.Tensor) or tuple(x.shape) != (4, 1, 32, 32):
                    shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                    raise _NotYet(
                        f"with latent_dim={latent_dim}, in {mode} mode, z of shape (4, "
                        f"{latent_dim}) gave {shape}, expected (4, 1, 32, 32)"
                    )
        violations = _call(generator_rule_violations, G, z)
        if violations:
            raise _NotYet(violations[0])
        parameters = sum(p.numel() for p in G.parameters())
        return (
            f"(B, latent_dim) -> (B, 1, 32, 32) in [-1, 1], following the design rules; "
            f"{parameters:,} parameters with latent_dim=16"
        )

    return _run(check)


# --------------------------------------------------------------------------- chapter 04
KLFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def check_gaussian_kl_general(kl_diagonal_gaussians: KLFn) -> CheckResult:
    """Chapter 04: KL(N(mu1, exp(logvar1)) || N(mu2, exp(logvar2))) for diagonal Gaussians,
    per example (summed over the last axis), against torch.distributions."""

    def check() -> str:
        rng = torch.Generator().manual_seed(0)
        mu1, logvar1, mu2, logvar2 = (torch.randn(6, 5, generator=rng) for _ in range(4))
        got = _as_tensor(
            _call(kl_diagonal_gaussians, mu1, logvar1, mu2, logvar2),
            "kl_diagonal_gaussians(mu1, logvar1, mu2, logvar2) with inputs (6, 5)",
            (6,),
        )
        q = torch.distributions.Normal(mu1.double(), torch.exp(0.5 * logvar1.double()))
        p = torch.distributions.Normal(mu2.double(), torch.exp(0.5 * logvar2.double()))
        expected = torch.distributions.kl_divergence(q, p).sum(-1)
        if not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
            worst = int((got - expected).abs().argmax())
            raise _NotYet(
                f"for example {worst} your KL is {got[worst]:.4f} nats, "
                f"torch.distributions gives {expected[worst]:.4f}"
            )
        zeros = torch.zeros_like(mu1)
        prior = _as_tensor(
            _call(kl_diagonal_gaussians, mu1, logvar1, zeros, zeros), "with a N(0, I) prior", (6,)
        )
        if not torch.allclose(prior, gaussian_kl(mu1, logvar1).double(), rtol=1e-4, atol=1e-4):
            raise _NotYet("with mu2 = 0 and logvar2 = 0 it should equal gaussian_kl(mu1, logvar1)")
        return "your KL matches torch.distributions, and reduces to gaussian_kl for N(0, I)"

    return _run(check)


# --------------------------------------------------------------------------- chapter 05
def check_naive_fid(naive_fid: Callable[[torch.Tensor, torch.Tensor], float]) -> CheckResult:
    """Chapter 05: ``naive_fid(features_a, features_b)`` from the formula, against ``fid``."""

    def check() -> str:
        rng = torch.Generator().manual_seed(0)
        mixing = torch.randn(12, 12, generator=rng)  # correlates the features
        a = torch.randn(400, 12, generator=rng) @ mixing  # (400, 12)
        b = 1.3 * torch.randn(300, 12, generator=rng) @ mixing + 0.5  # (300, 12)
        a[:, -2:], b[:, -2:] = 0.0, 0.0  # two dead features, as for ReLU features
        for first, second, what in [(a, b, "different sets"), (a, a[:200], "a set and its half")]:
            got = _as_float(_call(naive_fid, first, second), "naive_fid(features_a, features_b)")
            expected = fid(first, second)
            if not math.isclose(got, expected, rel_tol=1e-3, abs_tol=1e-3):
                raise _NotYet(
                    f"for {what} (12 features, two of them always 0) naive_fid gives "
                    f"{got:.4f}, book_utils.metrics.fid gives {expected:.4f}"
                )
        return f"naive_fid agrees with book_utils.metrics.fid ({expected:.4f} on the last pair)"

    return _run(check)


# --------------------------------------------------------------------------- chapter 06
DDIMStepFn = Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor]


def check_ddim_step(ddim_step: DDIMStepFn) -> CheckResult:
    """Chapter 06: ``ddim_step(x_t, eps_hat, abar_t, abar_prev)``, one deterministic DDIM
    update (eta = 0, no clipping), against the formula and two cases with known answers."""

    def check() -> str:
        rng = torch.Generator().manual_seed(0)
        x_t = torch.randn(3, 1, 28, 28, generator=rng)
        eps_hat = torch.randn(3, 1, 28, 28, generator=rng)
        for abar_t, abar_prev in [(0.3, 0.6), (0.01, 0.2), (0.9, 0.999)]:
            got = _as_tensor(
                _call(ddim_step, x_t, eps_hat, abar_t, abar_prev), "ddim_step(...)", (3, 1, 28, 28)
            )
            x0_hat = (x_t - math.sqrt(1 - abar_t) * eps_hat) / math.sqrt(abar_t)
            expected = math.sqrt(abar_prev) * x0_hat + math.sqrt(1 - abar_prev) * eps_hat
            if not torch.allclose(got, expected.double(), atol=1e-4):
                error = (got - expected.double()).abs().max().item()
                raise _NotYet(
                    f"with abar_t = {abar_t}, abar_prev = {abar_prev} the result is off by up "
                    f"to {error:.3g} per pixel; first guess x0 from x_t and eps_hat, then "
                    "rebuild x_prev from that guess and the same eps_hat"
                )
        same = _as_tensor(_call(ddim_step, x_t, eps_hat, 0.5, 0.5), "ddim_step(...)", x_t.shape)
        if not torch.allclose(same, x_t.double(), atol=1e-5):
            raise _NotYet("a step from abar_t to the same abar_prev should return x_t unchanged")
        last = _as_tensor(_call(ddim_step, x_t, eps_hat, 0.5, 1.0), "ddim_step(...)", x_t.shape)
        x0_hat = (x_t - math.sqrt(0.5) * eps_hat) / math.sqrt(0.5)
        if not torch.allclose(last, x0_hat.double(), atol=1e-5):
            raise _NotYet("a step to abar_prev = 1 (t = 0) should return the guess of x0")
        return "ddim_step matches the DDIM update, keeps x_t for a zero step, ends at x0_hat"

    return _run(check)


# --------------------------------------------------------------------------- chapter 07
GradientPenaltyFn = Callable[
    [Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor],
    torch.Tensor,
]


def _reference_gradient_penalty(critic, x_real, x_fake, eps) -> torch.Tensor:
    eps = eps.view(-1, *[1] * (x_real.dim() - 1))
    x_hat = (eps * x_real + (1 - eps) * x_fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.reshape(len(x_hat), -1).norm(dim=1) - 1).pow(2).mean()


def check_gradient_penalty(gradient_penalty_given_eps: GradientPenaltyFn) -> CheckResult:
    """Chapter 07: ``gradient_penalty_given_eps(critic, x_real, x_fake, eps)``, WGAN-GP's
    penalty at the given interpolation weights, on a linear critic with a known answer, on
    a small network with images, and differentiable in the critic's weights."""

    def check() -> str:
        w = torch.tensor([3.0, 4.0])  # f(x) = <w, x>: |grad f| = 5 everywhere

        def linear(x: torch.Tensor) -> torch.Tensor:
            return x @ w

        rng = torch.Generator().manual_seed(0)
        x_real, x_fake = torch.randn(6, 2, generator=rng), torch.randn(6, 2, generator=rng)
        eps = torch.rand(6, generator=rng)
        got = _as_float(_call(gradient_penalty_given_eps, linear, x_real, x_fake, eps), "it")
        if abs(got - 16.0) > 1e-4:
            raise _NotYet(
                f"for f(x) = 3 x_1 + 4 x_2, whose gradient has norm 5 everywhere, the penalty "
                f"is (5 - 1)^2 = 16; got {got:.4g}"
            )
        torch.manual_seed(0)
        net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))

        def critic(x: torch.Tensor) -> torch.Tensor:
            return net(x).squeeze(1)

        images = torch.randn(5, 1, 4, 4, generator=rng), torch.randn(5, 1, 4, 4, generator=rng)
        eps = torch.rand(5, generator=rng)
        expected = _reference_gradient_penalty(critic, *images, eps)
        penalty = _call(gradient_penalty_given_eps, critic, *images, eps)
        got = _as_float(penalty, "it")
        if abs(got - expected.item()) > 1e-5 * max(1.0, abs(expected.item())):
            raise _NotYet(
                f"on images (5, 1, 4, 4) and a small network the penalty should be "
                f"{expected.item():.6f}, got {got:.6f}: take one gradient norm per image, "
                "over all of its pixels, with x_hat = eps x_real + (1 - eps) x_fake"
            )
        if not isinstance(penalty, torch.Tensor) or not penalty.requires_grad:
            raise _NotYet(
                "the penalty must stay differentiable in the critic's weights: compute the "
                "gradient with create_graph=True and return a tensor"
            )
        net.zero_grad()
        penalty.backward()
        weight_grad = net[1].weight.grad
        net.zero_grad()
        expected.backward()
        if weight_grad is None or not torch.allclose(weight_grad, net[1].weight.grad, atol=1e-5):
            raise _NotYet("the penalty's gradient with respect to the critic's weights is wrong")
        return "the penalty is right on a linear critic and on images, and trains the critic"

    return _run(check)


# --------------------------------------------------------------------------- chapter 08
DropLabelsFn = Callable[[torch.Tensor, float, int], torch.Tensor]


def check_drop_labels(drop_labels: DropLabelsFn) -> CheckResult:
    """Chapter 08: ``drop_labels(y, p, null)``, the labels y (B,) with each one replaced by
    ``null`` with probability p, independently, and y itself left unchanged."""

    def check() -> str:
        y = torch.arange(100_000) % 10  # (100000,)
        original = y.clone()
        for p in (0.0, 0.1, 0.5, 1.0):
            torch.manual_seed(0)
            got = _call(drop_labels, y, p, 10)
            if not isinstance(got, torch.Tensor) or got.shape != y.shape:
                raise _NotYet(f"drop_labels should return a tensor shaped {tuple(y.shape)}")
            if not torch.equal(y, original):
                raise _NotYet("drop_labels changed y in place; return a new tensor")
            kept = got != 10
            if not torch.equal(got[kept], y[kept]):
                raise _NotYet("a label that is not dropped must stay what it was")
            share = (~kept).float().mean().item()
            if abs(share - p) > 0.01:  # 0.01 is more than six standard errors
                raise _NotYet(f"with p = {p}, {share:.3f} of the labels became null")
        torch.manual_seed(0)
        first = _call(drop_labels, y, 0.5, 10)
        torch.manual_seed(1)
        if torch.equal(first, _call(drop_labels, y, 0.5, 10)):
            raise _NotYet("two different seeds dropped the same labels: draw them at random")
        return "drop_labels replaces a share p of the labels by the null label, at random"

    return _run(check)


# --------------------------------------------------------------------------- chapter 09
def check_project_block_means(
    project_block_means: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor],
) -> CheckResult:
    """Chapter 09: ``project_block_means(x, y_low, factor)``, the image nearest to x whose
    factor x factor block means are y_low: checked by its two defining properties."""

    def check() -> str:
        rng = torch.Generator().manual_seed(0)
        for factor in (2, 4, 7):
            x = torch.randn(3, 1, 28, 28, generator=rng).double()
            y_low = torch.randn(3, 1, 28 // factor, 28 // factor, generator=rng).double()
            got = _as_tensor(
                _call(project_block_means, x, y_low, factor), "project_block_means(...)", x.shape
            )
            means = torch.nn.functional.avg_pool2d(got, factor)
            if not torch.allclose(means, y_low, atol=1e-5):
                raise _NotYet(
                    f"with factor {factor} the block means of the result are off by up to "
                    f"{(means - y_low).abs().max().item():.3g}; they must equal y_low"
                )
            change = got - x  # nearest: the change is constant within each block
            blocks = torch.nn.functional.avg_pool2d(change, factor)
            spread = change - torch.nn.functional.interpolate(blocks, scale_factor=factor)
            if spread.abs().max() > 1e-5:
                raise _NotYet(
                    f"with factor {factor} the result has the right block means but is not "
                    "the nearest such image: move every pixel of a block by the same amount"
                )
        return "project_block_means meets the block means and moves each block uniformly"

    return _run(check)


# --------------------------------------------------------------------------- chapter 10
def _reference_raster_mask(k: int, include_centre: bool) -> torch.Tensor:
    mask = torch.zeros(k, k)
    mask[: k // 2] = 1
    mask[k // 2, : k // 2 + int(include_centre)] = 1
    return mask


def check_raster_mask(raster_mask: Callable[[int, bool], torch.Tensor]) -> CheckResult:
    """Chapter 10: ``raster_mask(k, include_centre)``, the k x k mask of a causal masked
    convolution (mask "A" without the centre, "B" with it), against the reference, and a
    stack of 8 masked convolutions built from it checked for causality with autograd."""

    def check() -> str:
        for k in (3, 5, 7):
            for centre in (False, True):
                got = _as_tensor(
                    _call(raster_mask, k, centre), f"raster_mask({k}, {centre})", (k, k)
                )
                expected = _reference_raster_mask(k, centre).double()
                if not torch.equal(got, expected):
                    wrong = (got != expected).nonzero().tolist()
                    raise _NotYet(
                        f"raster_mask({k}, {centre}) differs from the causal mask at "
                        f"(row, column) {wrong[:4]}; keep the rows above the centre and "
                        "the pixels left of it" + (", and the centre" if centre else "")
                    )
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        for i in range(8):
            mask = _as_tensor(_call(raster_mask, 3, i > 0), "raster_mask", (3, 3)).float()
            conv = nn.Conv2d(1 if i == 0 else 4, 4, 3, padding=1)
            layers.append(_Masked(conv, mask))
        x = torch.rand(1, 1, 12, 12, requires_grad=True)
        (grad,) = torch.autograd.grad(nn.Sequential(*layers)(x)[0, :, 6, 6].sum(), x)
        after = grad[0, 0].flatten()[6 * 12 + 6 :]
        if after.abs().sum() > 0:
            raise _NotYet("a stack of convolutions with this mask sees the pixel it predicts")
        return "the masks match, and a stack of 8 masked layers is causal"

    return _run(check)


class _Masked(nn.Module):
    """A convolution whose kernel is multiplied by a mask (for check_raster_mask)."""

    def __init__(self, conv: nn.Conv2d, mask: torch.Tensor) -> None:
        super().__init__()
        self.conv, self.mask = conv, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.conv.weight * self.mask
        return torch.relu(nn.functional.conv2d(x, weight, self.conv.bias, padding=1))
