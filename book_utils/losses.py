"""The GAN objectives of chapter 01, as pure functions of the discriminator's logits.

The discriminator D outputs a logit a, and D(x) = sigmoid(a). With softplus(t) = log(1 + e^t):

    -log D(x)       = -log sigmoid(a)     = softplus(-a)
    -log(1 - D(x))  = -log sigmoid(-a)    = softplus(a)

so every loss below is a softplus of logits: numerically safe for any logit, where
``Sigmoid`` followed by ``log`` would return -inf once D saturates. Optimisers minimise,
so a quantity to maximise appears with a minus sign.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
