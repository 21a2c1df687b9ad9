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


# ---------------------------------------------------------------- chapter 07's losses


def test_wasserstein_and_hinge_losses_match_a_hand_computation():
    from book_utils.losses import (
        hinge_discriminator_loss,
        wasserstein_critic_loss,
        wasserstein_generator_loss,
    )

    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 1.5])
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx((-1.5) / 3 - 1.5 / 3)
    assert wasserstein_generator_loss(fake).item() == pytest.approx(0.5)
    # real: max(0, 1 - r) = 0, 0.5, 2; fake: max(0, 1 + f) = 0, 1, 2.5
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(2.5 / 3 + 3.5 / 3)


def test_gradient_penalty_of_a_linear_critic_is_known_in_closed_form():
    from book_utils.losses import gradient_penalty

    w = torch.tensor([3.0, 4.0])  # f(x) = <w, x>: gradient w everywhere, norm 5

    def critic(x):
        return x @ w

    x_real, x_fake = torch.randn(16, 2), torch.randn(16, 2)
    assert gradient_penalty(critic, x_real, x_fake).item() == pytest.approx(16.0)
    # a 1-Lipschitz linear critic (norm 1) is not penalised; images shaped (B, 1, 2, 2) too
    unit = torch.tensor([0.6, 0.8, 0.0, 0.0])

    def image_critic(x):
        return x.flatten(1) @ unit

    images = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    assert gradient_penalty(image_critic, *images).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="differ"):
        gradient_penalty(critic, x_real, x_fake[:3])


def test_gradient_penalty_interpolates_and_reaches_the_critic_weights():
    from book_utils.losses import gradient_penalty

    # f(x) = sum(x^2): gradient 2 x_hat, so the penalty depends on where x_hat lies
    x_real, x_fake = torch.ones(1000, 1), -torch.ones(1000, 1)
    g = torch.Generator().manual_seed(0)
    eps = torch.rand(1000, generator=g)  # the same draws as inside
    x_hat = (2 * eps - 1).view(-1, 1)
    expected = ((2 * x_hat).abs() - 1).pow(2).mean()
    got = gradient_penalty(
        lambda x: x.pow(2).sum(1), x_real, x_fake, torch.Generator().manual_seed(0)
    )
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    # the penalty is differentiable in the critic's weights (double backpropagation)
    layer = torch.nn.Linear(3, 1)
    penalty = gradient_penalty(lambda x: layer(x).squeeze(1), torch.randn(5, 3), torch.randn(5, 3))
    penalty.backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_r1_penalty_is_the_mean_squared_gradient_norm_on_real_data():
    from book_utils.losses import r1_penalty

    x = torch.randn(8, 3)
    # f(x) = sum(x^2): gradient 2x, squared norm 4 |x|^2
    expected = (4 * x.pow(2).sum(1)).mean()
    assert r1_penalty(lambda v: v.pow(2).sum(1), x).item() == pytest.approx(expected.item())
    assert not x.requires_grad  # the caller's tensor is left alone
