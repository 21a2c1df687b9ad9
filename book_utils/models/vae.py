"""A variational autoencoder for binarised MNIST (chapter 04), after Kingma and Welling (2014).

Two networks and a prior:

* the **encoder** q(z | x) = N(mu(x), diag(exp(logvar(x)))) maps an image to the mean and
  log-variance of a Gaussian over the latent code z;
* the **decoder** p(x | z) = Bernoulli(sigmoid(logits(z))) maps a code to one logit per
  pixel: each pixel is on with probability sigmoid(logit), independently of the others;
* the **prior** p(z) = N(0, I).

Both networks are stacks of Linear -> ReLU layers. The objectives that train them (the
ELBO and the importance-weighted bound) live in :mod:`book_utils.losses`.

Images go in as (B, 1, 28, 28) with pixels in {0, 1} (or [0, 1]); the networks flatten
them to (B, 784) inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from book_utils.models.layers import eval_mode, latent_noise, mlp

IMAGE_SHAPE = (1, 28, 28)  # (channels, height, width) of an MNIST image
NUM_PIXELS = 28 * 28


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 32  # size of the latent code z
    hidden: tuple[int, ...] = (512, 512)  # encoder widths; the decoder uses them reversed


class VAE(nn.Module):
    """Encoder q(z|x), decoder p(x|z) and the N(0, I) prior, for 28x28 binary images."""

    def __init__(self, config: VAEConfig = VAEConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = mlp(NUM_PIXELS, config.hidden)  # Linear -> ReLU layers
        self.to_mu = nn.Linear(config.hidden[-1], config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden[-1], config.latent_dim)
        self.decoder = mlp(config.latent_dim, tuple(reversed(config.hidden)))
        self.to_logits = nn.Linear(config.hidden[0], NUM_PIXELS)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): images (B, 1, 28, 28) -> mean and log-variance, each (B, latent_dim)."""
        h = self.encoder(x.flatten(1))  # (B, 784) -> (B, hidden[-1])
        return self.to_mu(h), self.to_logvar(h)  # (B, latent_dim) each

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """p(x|z): codes (..., latent_dim) -> pixel logits (..., 1, 28, 28)."""
        h = self.decoder(z)  # (..., hidden[0])
        return self.to_logits(h).unflatten(-1, IMAGE_SHAPE)  # (..., 784) -> (..., 1, 28, 28)

    pixel_range = (0.0, 1.0)  # what sample() returns: pixel probabilities

    @eval_mode
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images from the model: z ~ N(0, I) (drawn on the CPU with ``generator``), then
        the decoder's pixel probabilities sigmoid(logits) in [0, 1], shape (n, 1, 28, 28).

        These are the *means* of p(x|z), the usual way to show a Bernoulli VAE's samples;
        ``torch.bernoulli`` of them gives binary images.
        """
        z = latent_noise(self, n, self.config.latent_dim, generator)  # (n, latent_dim)
        return torch.sigmoid(self.decode(z))  # (n, 1, 28, 28)


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample of N(mu, sigma^2) that is a
    differentiable function of mu and logvar (sigma = exp(logvar / 2)).

    ``mu`` and ``logvar`` may have leading sample axes, e.g. (K, B, latent_dim).
    """
    if generator is None:
        eps = torch.randn_like(mu)
    else:  # a generator draws on its own device; move the noise to mu's
        eps = torch.randn(mu.shape, generator=generator, device=generator.device).to(mu)
    return mu + torch.exp(0.5 * logvar) * eps
