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

With ``num_classes > 0`` the same class is a **conditional VAE** (chapter 08, after Sohn et
al., 2015): the label y, one-hot, is appended to the encoder's input and to the decoder's,
q(z | x, y) and p(x | z, y), with the prior p(z) = N(0, I) as before. With the default 0
the networks are exactly chapter 04's, so its saved models load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from book_utils.models.layers import check_labels, eval_mode, latent_noise, mlp

IMAGE_SHAPE = (1, 28, 28)  # (channels, height, width) of an MNIST image
NUM_PIXELS = 28 * 28


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 32  # size of the latent code z
    hidden: tuple[int, ...] = (512, 512)  # encoder widths; the decoder uses them reversed
    num_classes: int = 0  # > 0: a conditional VAE, the one-hot label fed to both networks


class VAE(nn.Module):
    """Encoder q(z|x), decoder p(x|z) and the N(0, I) prior, for 28x28 binary images; with
    ``config.num_classes > 0``, q(z|x, y) and p(x|z, y) for labels y (a conditional VAE)."""

    def __init__(self, config: VAEConfig = VAEConfig()) -> None:
        super().__init__()
        self.config = config
        k = config.num_classes  # 0: no label anywhere
        self.encoder = mlp(NUM_PIXELS + k, config.hidden)  # Linear -> ReLU layers
        self.to_mu = nn.Linear(config.hidden[-1], config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden[-1], config.latent_dim)
        self.decoder = mlp(config.latent_dim + k, tuple(reversed(config.hidden)))
        self.to_logits = nn.Linear(config.hidden[0], NUM_PIXELS)

    def _with_label(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """h (..., n) with the one-hot label appended, (..., n + num_classes), if the model
        is conditional; h itself if not. Refuses a label the model cannot take."""
        k = self.config.num_classes
        if k == 0:
            if y is not None:
                raise ValueError("this VAE is not conditional (num_classes = 0); give no y")
            return h
        y = check_labels(y, k, len(h) if h.dim() == 2 else h.shape[-2])
        one_hot = F.one_hot(y.to(h.device), k).to(h.dtype)  # (B, k)
        return torch.cat([h, one_hot.expand(*h.shape[:-1], k)], dim=-1)

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x[, y]): images (B, 1, 28, 28) [and labels (B,)] -> mean and log-variance,
        each (B, latent_dim)."""
        h = self.encoder(self._with_label(x.flatten(1), y))  # (B, 784 [+ k]) -> (B, hidden)
        return self.to_mu(h), self.to_logvar(h)  # (B, latent_dim) each

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """p(x|z[, y]): codes (..., latent_dim) [and labels (B,), for codes (..., B, d)]
        -> pixel logits (..., 1, 28, 28)."""
        h = self.decoder(self._with_label(z, y))  # (..., hidden[0])
        return self.to_logits(h).unflatten(-1, IMAGE_SHAPE)  # (..., 784) -> (..., 1, 28, 28)

    pixel_range = (0.0, 1.0)  # what sample() returns: pixel probabilities

    @eval_mode
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n images from the model: z ~ N(0, I) (drawn on the CPU with ``generator``), then
        the decoder's pixel probabilities sigmoid(logits) in [0, 1], shape (n, 1, 28, 28).

        These are the *means* of p(x|z), the usual way to show a Bernoulli VAE's samples;
        ``torch.bernoulli`` of them gives binary images. A conditional VAE draws the
        digits ``labels`` (n,); without them, the classes in turn, 0, 1, ..., 9, 0, ...
        """
        z = latent_noise(self, n, self.config.latent_dim, generator)  # (n, latent_dim)
        if self.config.num_classes and labels is None:
            labels = torch.arange(n) % self.config.num_classes  # (n,)
        return torch.sigmoid(self.decode(z, labels))  # (n, 1, 28, 28)


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
