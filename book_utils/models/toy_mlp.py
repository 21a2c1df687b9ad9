"""Small fully connected networks for the toy GANs of chapter 01 (1-D and 2-D data).

A generator maps noise z ~ N(0, I) to a point x; a discriminator maps a point x to
one logit per point, D(x) = sigmoid(logit). Discriminators return logits, never
probabilities: the losses use ``softplus`` / ``binary_cross_entropy_with_logits``,
which stay finite where ``log(sigmoid(.))`` would underflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ToyMLPConfig:
    data_dim: int = 2  # dimension of a data point x (1 or 2 for the toys)
    latent_dim: int = 2  # dimension of the generator's noise z
    hidden_dim: int = 128  # width of every hidden layer
    num_hidden: int = 2  # number of hidden layers in each network


def mlp(in_dim: int, hidden_dim: int, out_dim: int, num_hidden: int, slope: float) -> nn.Sequential:
    """Linear -> activation, num_hidden times, then a final Linear (no activation).

    The activation is LeakyReLU(slope), or a plain ReLU when slope is 0.
    """
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_hidden):
        activation = nn.ReLU() if slope == 0 else nn.LeakyReLU(slope)
        layers += [nn.Linear(dim, hidden_dim), activation]
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class ToyGenerator(nn.Module):
    """G: z (B, latent_dim) -> x (B, data_dim), an MLP with ReLU hidden layers."""

    def __init__(self, config: ToyMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(
            config.latent_dim, config.hidden_dim, config.data_dim, config.num_hidden, slope=0.0
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, data_dim)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n points x = G(z), z ~ N(0, I), shape (n, data_dim), without gradients."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator)  # (n, latent_dim)
        with torch.no_grad():
            return self(z.to(device))


class ToyDiscriminator(nn.Module):
    """D: x (B, data_dim) -> logits (B,), an MLP with LeakyReLU(0.2) hidden layers.

    The probability that x is real is D(x) = sigmoid(logit).
    """

    def __init__(self, config: ToyMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.net = mlp(config.data_dim, config.hidden_dim, 1, config.num_hidden, slope=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 1 and self.config.data_dim == 1:
            x = x.unsqueeze(1)  # (B,) -> (B, 1): 1-D data may come as a flat vector
        return self.net(x).squeeze(1)  # (B, 1) -> (B,)
