"""Drawing images from a generator: shared by every GAN of the book."""

from __future__ import annotations

import torch
from torch import nn


def sample_generator(
    G: nn.Module, n: int, latent_dim: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n images G(z), z ~ N(0, I) drawn on the CPU with ``generator``, without gradients.

    G runs in eval mode (batch norm uses its running statistics, so a sample does not
    depend on the others in its batch) and is put back in the mode it was in.
    """
    z = torch.randn(n, latent_dim, generator=generator)  # (n, latent_dim)
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            return G(z.to(device))  # (n, 1, 28, 28)
    finally:
        G.train(was_training)
