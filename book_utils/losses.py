"""The book's objectives as pure functions: the GAN losses of chapter 01, the VAE bounds
of chapter 04, and the Wasserstein, hinge and penalty terms of chapter 07.

GAN losses are functions of the discriminator's logits.

The discriminator D outputs a logit a, and D(x) = sigmoid(a). With softplus(t) = log(1 + e^t):

    -log D(x)       = -log sigmoid(a)     = softplus(-a)
    -log(1 - D(x))  = -log sigmoid(-a)    = softplus(a)

so every loss below is a softplus of logits: numerically safe for any logit, where
``Sigmoid`` followed by ``log`` would return -inf once D saturates. Optimisers minimise,
so a quantity to maximise appears with a minus sign.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from book_utils.data.toy import LOG_2PI
from book_utils.models.vae import reparameterise


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss, the negated value function -V(D, G), averaged over the batch."""
    # D: max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]   (we minimise the negative, -V)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's loss exactly as in the minimax game; its gradient vanishes when D rejects fakes."""
    # G, saturating (the minimax game itself): min_G  E_z[log(1 - D(G(z)))]
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's loss in practice: the non-saturating heuristic of Goodfellow et al. (2014)."""
    # G, non-saturating (a deviation from the minimax game): max_G  E_z[log D(G(z))]
    return F.softplus(-fake_logits).mean()


@dataclass(frozen=True)
class GANTrainConfig:
    """The settings of the alternating optimisation of chapters 02 and 03."""

    num_steps: int = 10_000  # total training steps (one D update and one G update each)
    batch_size: int = 64  # real images per step (and as many fakes)
    lr_g: float = 2e-4  # Adam learning rate of G
    lr_d: float = 2e-4  # Adam learning rate of D
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's (beta1, beta2); beta1 = 0.5 as in DCGAN
    seed: int = 0  # seeds the weights, the noise and the order of the minibatches


# ------------------------------------------------------- Wasserstein, hinge, R1 (chapter 07)
# A critic f (or a discriminator D) returns unbounded scores, one per example. These
# losses use the scores as they are: no sigmoid, no log.


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic's loss: minus the Kantorovich-Rubinstein estimate of W1."""
    # critic: max_f  E_x[f(x)] - E_z[f(G(z))]   (we minimise the negative)
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """G's loss against a critic (WGAN and WGAN-GP), and against a hinge D."""
    # G: min_G  -E_z[f(G(z))]   (the term of W1's estimate that depends on G)
    return -fake_scores.mean()


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's hinge loss: penalise real scores below +1 and fake scores above -1."""
    # D: min_D  E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def _per_example_gradient(
    critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """d critic(x_i) / d x_i for each example, flattened: (B, ...) -> (B, numel / B).

    ``create_graph=True`` keeps the graph of the gradient, so that a penalty on it can
    be differentiated with respect to the critic's weights (a second derivative).
    """
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.reshape(len(x), -1)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    x_real: torch.Tensor,
    x_fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty E[(||grad f(x_hat)|| - 1)^2], x_hat on random points between pairs.

    x_hat = eps x_real + (1 - eps) x_fake with one eps ~ U[0, 1] per pair (drawn on the
    CPU with ``generator``). The caller multiplies it by lambda (10 in Gulrajani et al.).
    """
    if x_real.shape != x_fake.shape:
        raise ValueError(f"x_real {tuple(x_real.shape)} and x_fake {tuple(x_fake.shape)} differ")
    eps = torch.rand(len(x_real), generator=generator).to(x_real.device)  # (B,)
    eps = eps.view(-1, *[1] * (x_real.dim() - 1))  # (B, 1, ..., 1)
    x_hat = eps * x_real.detach() + (1 - eps) * x_fake.detach()  # (B, ...)
    grad = _per_example_gradient(critic, x_hat)  # (B, D)
    return (grad.norm(dim=1) - 1).pow(2).mean()


def r1_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], x_real: torch.Tensor
) -> torch.Tensor:
    """R1 of Mescheder et al. (2018): E_x[||grad D(x)||^2] on real data only.

    The caller multiplies it by gamma / 2. It pushes D's gradient to zero on the data,
    where an equilibrium with p_g = p_data must have it.
    """
    grad = _per_example_gradient(critic, x_real)  # (B, D)
    return grad.pow(2).sum(dim=1).mean()


# --------------------------------------------------------------------------- VAE (chapter 04)
# The pieces of the evidence lower bound (ELBO) of a VAE with a Gaussian encoder
# q(z|x) = N(mu, diag(exp(logvar))), a N(0, I) prior and a Bernoulli decoder. Each returns
# one number per example (summed over pixels or latent dimensions), in nats.


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in closed form, per example: (B, d) -> (B,)."""
    # KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = sum_i x_i log p_i + (1 - x_i) log(1 - p_i), p = sigmoid(logits).

    ``logits`` (..., 1, 28, 28) against images x broadcastable to it -> (...,), one number
    per image. Computed from logits, so it stays finite where p_i is 0 or 1.
    """
    nll = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    return -nll.flatten(-3).sum(-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last axis: (..., d) -> (...)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def iwae_bound(
    vae: nn.Module, x: torch.Tensor, num_samples: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The importance-weighted bound of Burda et al. (2016), per example: (B, ...) -> (B,).

        L_K(x) = E[ log (1/K) sum_k p(x, z_k) / q(z_k | x) ],  z_1..z_K ~ q(z | x)

    Each call returns one unbiased estimate of L_K(x) for every image in x. L_1 is the
    ELBO, L_K grows with K and tends to log p(x) as K grows. Differentiable: -mean of it
    is the IWAE training loss.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    mu, logvar = vae.encode(x)  # (B, d) each
    mu_k = mu.expand(num_samples, *mu.shape)  # (K, B, d)
    logvar_k = logvar.expand(num_samples, *logvar.shape)  # (K, B, d)
    z = reparameterise(mu_k, logvar_k, generator)  # (K, B, d)
    log_px_given_z = bernoulli_log_likelihood(vae.decode(z), x)  # (K, B)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))  # (K, B)
    log_qz = gaussian_log_density(z, mu_k, logvar_k)  # (K, B)
    log_w = log_px_given_z + log_pz - log_qz  # (K, B): log importance weights
    return torch.logsumexp(log_w, dim=0) - math.log(num_samples)  # (B,)
