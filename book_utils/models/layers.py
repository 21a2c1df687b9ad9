"""Pieces shared by the book's networks: a fully connected stack, eval-mode sampling."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from book_utils.data import from_signed_unit

Method = TypeVar("Method", bound=Callable[..., torch.Tensor])


def mlp(
    in_dim: int, widths: tuple[int, ...], slope: float = 0.0, dropout: float = 0.0
) -> nn.Sequential:
    """Linear -> activation [-> Dropout] for each width in ``widths``.

    The activation is ReLU when ``slope`` is 0, else LeakyReLU(slope). The stack's output
    size is ``widths[-1]``; a network adds its own last layer after it.
    """
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), nn.LeakyReLU(slope) if slope else nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    return nn.Sequential(*layers)


def eval_mode(method: Method) -> Method:
    """Run a model's method (or a function whose first argument is the model) in eval mode
    and without gradients, then restore its mode.

    In eval mode batch norm uses its running statistics and dropout is off, so a sample
    does not depend on the other samples of its batch. Decorates every ``sample`` method,
    ``snapshot_images``, the test log-likelihood and the DCGAN rule check's ``trace``.
    """

    @functools.wraps(method)
    def wrapper(self: nn.Module, *args, **kwargs) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return method(self, *args, **kwargs)
        finally:
            self.train(was_training)

    return wrapper  # type: ignore[return-value]


def latent_noise(
    model: nn.Module, n: int, latent_dim: int, generator: torch.Generator | None
) -> torch.Tensor:
    """z ~ N(0, I), (n, latent_dim), drawn on the CPU with ``generator`` (so the same seed
    gives the same noise on every device), then moved to the model's device."""
    z = torch.randn(n, latent_dim, generator=generator)  # (n, latent_dim)
    return z.to(next(model.parameters()).device)


@eval_mode
def snapshot_images(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G(z) for a fixed noise batch, as uint8 images (N, 28, 28), computed in eval mode."""
    return from_signed_unit(G(z.to(next(G.parameters()).device)).float().cpu())  # (N, 28, 28)


def check_labels(y: torch.Tensor | None, num_classes: int, n: int) -> torch.Tensor:
    """Labels y as a long tensor (n,) of classes 0, ..., num_classes - 1, or a clear error."""
    if y is None:
        raise ValueError(
            f"this model is conditional ({num_classes} classes): pass labels, {n} of "
            f"0..{num_classes - 1}"
        )
    y = torch.as_tensor(y)
    if y.dim() == 0:
        y = y.expand(n)  # one label for the whole batch
    if y.shape != (n,) or y.is_floating_point() or y.is_complex():
        raise ValueError(f"labels must be {n} whole numbers, shaped ({n},); got {tuple(y.shape)}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {y.min()}..{y.max()}")
    return y.long()
