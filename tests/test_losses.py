"""The GAN losses against a hand computation with probabilities."""

import math

import pytest
import torch

from book_utils.losses import (
    discriminator_loss,
    generator_loss_nonsaturating,
    generator_loss_saturating,
)


def test_losses_match_the_formulas_in_probabilities():
    real = torch.tensor([2.0, -1.0])
    fake = torch.tensor([0.5, -3.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected_d = -(d_real.log().mean() + (1 - d_fake).log().mean())
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-6)
    assert generator_loss_saturating(fake).item() == pytest.approx(
        (1 - d_fake).log().mean().item(), rel=1e-6
    )
    assert generator_loss_nonsaturating(fake).item() == pytest.approx(
        -d_fake.log().mean().item(), rel=1e-6
    )


def test_value_at_the_equilibrium_is_log_4():
    # D(x) = 1/2 everywhere (logit 0): the discriminator's loss is log 4.
    zeros = torch.zeros(10)
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(math.log(4))


def test_losses_stay_finite_for_extreme_logits():
    extreme = torch.tensor([-1000.0, 1000.0], requires_grad=True)
    for loss in (
        discriminator_loss(extreme, extreme),
        generator_loss_saturating(extreme),
        generator_loss_nonsaturating(extreme),
    ):
        (grad,) = torch.autograd.grad(loss, extreme)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_saturating_gradient_vanishes_when_d_rejects_fakes():
    logit = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) = 0.0003
    (sat,) = torch.autograd.grad(generator_loss_saturating(logit), logit)
    (non,) = torch.autograd.grad(generator_loss_nonsaturating(logit), logit)
    assert abs(sat.item()) < 1e-3 and abs(non.item()) > 0.99
