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

from book_utils.models.layers import eval_mode, latent_noise, mlp


@dataclass(frozen=True)
class ToyMLPConfig:
    data_dim: int = 2  # dimension of a data point x (1 or 2 for the toys)
    latent_dim: int = 2  # dimension of the generator's noise z
    hidden_dim: int = 128  # width of every hidden layer
    num_hidden: int = 2  # number of hidden layers in each network


class ToyGenerator(nn.Module):
    """G: z (B, latent_dim) -> x (B, data_dim), an MLP with ReLU hidden layers."""

    def __init__(self, config: ToyMLPConfig) -> None:
        super().__init__()
        self.config = config
        hidden = mlp(config.latent_dim, (config.hidden_dim,) * config.num_hidden)  # ReLU
        self.net = nn.Sequential(*hidden, nn.Linear(config.hidden_dim, config.data_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, data_dim)

    @eval_mode
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n points x = G(z), z ~ N(0, I), shape (n, data_dim), without gradients."""
        return self(latent_noise(self, n, self.config.latent_dim, generator))  # (n, data_dim)


class ToyDiscriminator(nn.Module):
    """D: x (B, data_dim) -> logits (B,), an MLP with LeakyReLU(0.2) hidden layers.

    The probability that x is real is D(x) = sigmoid(logit).
    """

    def __init__(self, config: ToyMLPConfig) -> None:
        super().__init__()
        self.config = config
        hidden = mlp(config.data_dim, (config.hidden_dim,) * config.num_hidden, slope=0.2)
        self.net = nn.Sequential(*hidden, nn.Linear(config.hidden_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 1 and self.config.data_dim == 1:
            x = x.unsqueeze(1)  # (B,) -> (B, 1): 1-D data may come as a flat vector
        return self.net(x).squeeze(1)  # (B, 1) -> (B,)
