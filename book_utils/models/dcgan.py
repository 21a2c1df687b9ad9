"""DCGAN for 28x28 MNIST (chapter 03), following the design rules of Radford et al. (2016).

The rules, and where each one lives below:

1. No pooling: G upsamples with strided *transposed* convolutions, D downsamples with
   strided convolutions, so both networks learn their own resampling.
2. Batch norm in both networks, except on G's output layer and on D's input layer.
3. ReLU in G (tanh on its output), LeakyReLU(0.2) everywhere in D.
4. tanh output: G's images lie in [-1, 1], the range the data is scaled to.
5. No fully connected hidden layers: G's only Linear layer projects z to the first
   feature map; D ends with a convolution that covers the whole 7x7 map, giving one logit.
6. Weights drawn from N(0, 0.02^2) (:func:`init_weights`); batch norm's scales from
   N(1, 0.02^2), which the paper leaves open, as in the PyTorch DCGAN tutorial.

:mod:`book_utils.models.dcgan_rules` checks any network against rules 1-5, for the tests and
for chapter 03's exercise.

Shapes, native to MNIST: z -> 7x7 -> 14x14 -> 28x28 in G, and back in D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from book_utils.models.layers import eval_mode, latent_noise


@dataclass(frozen=True)
class DCGANConfig:
    latent_dim: int = 64  # size of the noise vector z
    g_channels: int = 128  # G's channels at 14x14; its 7x7 map has twice as many
    d_channels: int = 128  # D's channels at 14x14; its 7x7 map has twice as many


def init_weights(module: nn.Module) -> None:
    """Rule 6: conv and linear weights ~ N(0, 0.02^2); batch norm scales ~ N(1, 0.02^2).

    The paper gives the first; the second follows the PyTorch DCGAN tutorial.

    Apply with ``model.apply(init_weights)``; it visits every submodule.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, mean=1.0, std=0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """G: z (B, latent_dim) -> images (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, config: DCGANConfig = DCGANConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.g_channels
        # Rule 5: the one fully connected layer, a projection of z reshaped to a 7x7 map.
        self.project = nn.Linear(config.latent_dim, 2 * c * 7 * 7, bias=False)
        self.net = nn.Sequential(
            # Rule 2 and 3: batch norm and ReLU on every hidden map of G.
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
            # Rule 1: a strided transposed convolution doubles the resolution.
            nn.ConvTranspose2d(2 * c, c, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),  # (B, c, 14, 14)
            nn.ReLU(),
            # Rule 2: no batch norm on the output layer, which must be free to set the
            # pixel statistics. Rule 4: tanh, to match data scaled to [-1, 1].
            nn.ConvTranspose2d(c, 1, kernel_size=4, stride=2, padding=1),  # (B, 1, 28, 28)
            nn.Tanh(),
        )
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z)  # (B, 2c * 7 * 7)
        h = h.view(-1, 2 * self.config.g_channels, 7, 7)  # (B, 2c, 7, 7)
        return self.net(h)  # (B, 2c, 7, 7) -> (B, c, 14, 14) -> (B, 1, 28, 28)

    pixel_range = (-1.0, 1.0)  # what sample() returns: tanh outputs

    @eval_mode
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images G(z), z ~ N(0, I) drawn with ``generator``, in eval mode, no gradients."""
        return self(latent_noise(self, n, self.config.latent_dim, generator))  # (n, 1, 28, 28)


class DCGANDiscriminator(nn.Module):
    """D: images (B, 1, 28, 28) -> logits (B,); D(x) = sigmoid(logit) is P(x is real)."""

    def __init__(self, config: DCGANConfig = DCGANConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.d_channels
        self.net = nn.Sequential(
            # Rule 1: strided convolutions halve the resolution; no pooling.
            # Rule 2: no batch norm on the input layer, which sees the raw pixels.
            nn.Conv2d(1, c, kernel_size=4, stride=2, padding=1),  # (B, c, 14, 14)
            nn.LeakyReLU(0.2),  # Rule 3
            nn.Conv2d(c, 2 * c, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * c),  # (B, 2c, 7, 7)
            nn.LeakyReLU(0.2),
            # Rule 5: a 7x7 convolution over the whole map gives one logit, no hidden FC layer.
            nn.Conv2d(2 * c, 1, kernel_size=7),  # (B, 1, 1, 1)
        )
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()  # (B, 1, 1, 1) -> (B,) logits, no sigmoid
