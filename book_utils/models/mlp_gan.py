"""A fully connected GAN for MNIST (chapter 02), in the spirit of Goodfellow et al. (2014).

G maps noise z ~ N(0, I) of size ``latent_dim`` to a 784-pixel image in [-1, 1] (tanh);
D maps an image to one logit per image, D(x) = sigmoid(logit). Both are plain stacks of
Linear layers with LeakyReLU(0.2); D uses dropout, as the original paper did, so that it
cannot simply memorise the training images.

Images go in and come out as (B, 1, 28, 28); the networks flatten them to (B, 784) inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from book_utils.models.layers import eval_mode, latent_noise, mlp

IMAGE_SHAPE = (1, 28, 28)  # (channels, height, width) of an MNIST image
NUM_PIXELS = 28 * 28


@dataclass(frozen=True)
class MLPGANConfig:
    latent_dim: int = 64  # size of the noise vector z
    g_hidden: tuple[int, ...] = (256, 512, 1024)  # widths of G's hidden layers, z -> image
    d_hidden: tuple[int, ...] = (512, 256)  # widths of D's hidden layers, image -> logit
    d_dropout: float = 0.3  # dropout after each hidden layer of D (training only)


class MLPGenerator(nn.Module):
    """G: z (B, latent_dim) -> images (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, config: MLPGANConfig = MLPGANConfig()) -> None:
        super().__init__()
        self.config = config
        self.hidden = mlp(config.latent_dim, config.g_hidden, slope=0.2)
        self.out = nn.Linear(config.g_hidden[-1], NUM_PIXELS)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.hidden(z)  # (B, g_hidden[-1])
        x = torch.tanh(self.out(h))  # (B, 784) in [-1, 1], the range of the data
        return x.view(-1, *IMAGE_SHAPE)  # (B, 1, 28, 28)

    pixel_range = (-1.0, 1.0)  # what sample() returns: tanh outputs

    @eval_mode
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images G(z), z ~ N(0, I) drawn with ``generator``, in eval mode, no gradients."""
        return self(latent_noise(self, n, self.config.latent_dim, generator))  # (n, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """D: images (B, 1, 28, 28) -> logits (B,); D(x) = sigmoid(logit) is P(x is real)."""

    def __init__(self, config: MLPGANConfig = MLPGANConfig()) -> None:
        super().__init__()
        self.config = config
        self.hidden = mlp(NUM_PIXELS, config.d_hidden, slope=0.2, dropout=config.d_dropout)
        self.out = nn.Linear(config.d_hidden[-1], 1)  # one logit, no sigmoid: losses take logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x.flatten(1))  # (B, 784) -> (B, d_hidden[-1])
        return self.out(h).squeeze(1)  # (B, 1) -> (B,)
