"""The alternating GAN update of chapters 02 and 03 as one function: chapter 03 trains
with it (and shows it), and so do the scripts that train chapter 03's DCGAN outside the
chapter (``scripts/train_ddp.py``, ``benchmarks/bench_speed.py``).

Chapter 02 writes the same step out, closing over its networks and optimisers. Here
they come in as arguments, so that a caller can pass networks wrapped for data
parallelism (``DistributedDataParallel``), compiled (``torch.compile``), or run under
mixed precision, and draw the noise ``z`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from book_utils.losses import (
    discriminator_loss,
    generator_loss_nonsaturating,
    hinge_discriminator_loss,
    wasserstein_generator_loss,
)


def gan_step(
    x: torch.Tensor,
    z: torch.Tensor,
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    D_for_g: nn.Module | None = None,
    G_ema: AveragedModel | None = None,
    precision: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, torch.Tensor]:
    """One update of D, then one of G, on real images x (B, 1, 28, 28) and noise z (B, d).

    ``D_for_g``: the D that G's loss goes through (default: ``D``). Under
    ``DistributedDataParallel`` pass the unwrapped network: G's update needs D's gradient
    with respect to its input, and D's parameter gradients from it are thrown away, so they
    must not be averaged across processes. ``G_ema``: a running average of G's weights,
    updated after G's step. ``precision``: a context for the forward passes (autocast).
    """
    D_for_g = D if D_for_g is None else D_for_g
    with precision():
        x_fake = G(z)  # (B, 1, 28, 28)
        # D step: max_D E[log D(x)] + E[log(1 - D(G(z)))]
        real_logits = D(x)  # (B,)
        fake_logits = D(x_fake.detach())  # (B,); detach: this step must not update G
        loss_d = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    with precision():
        # G step: max_G E[log D(G(z))]  (non-saturating; deviates from the minimax game)
        loss_g = generator_loss_nonsaturating(D_for_g(x_fake))  # D has just been updated
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    if G_ema is not None:
        G_ema.update_parameters(G)  # G_ema <- decay * G_ema + (1 - decay) * G

    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "D(x)": torch.sigmoid(real_logits.float()).mean().detach(),
        "D(G(z))": torch.sigmoid(fake_logits.float()).mean().detach(),
    }


def hinge_gan_step(
    x: torch.Tensor,
    z: torch.Tensor,
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    y: torch.Tensor | None = None,
    r1_gamma: float = 0.0,
    update_g: bool = True,
) -> dict[str, torch.Tensor]:
    """One update of D with the hinge loss (plus gamma / 2 R1 if ``r1_gamma`` > 0), then one
    of G, on real images x (B, 1, 28, 28), noise z (B, d) and, for a conditional pair of
    networks (chapter 08), the labels y (B,) that both the real and the fake images get.
    This is chapter 07's SN-GAN step; spectral normalisation lives in D itself.
    ``update_g=False`` updates D only (for several D updates per G update)."""
    cond = () if y is None else (y,)  # the label, passed to both networks if there is one
    x_fake = G(z, *cond)  # (B, 1, 28, 28)
    if r1_gamma > 0:  # R1 needs D's gradient with respect to its real input
        x = x.detach().requires_grad_(True)
    real_logits, fake_logits = D(x, *cond), D(x_fake.detach(), *cond)  # (B,) each
    # D: min_D  E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]  (+ gamma/2 E|grad D(x)|^2)
    loss_d = hinge_discriminator_loss(real_logits, fake_logits)
    if r1_gamma > 0:  # R1 (losses.r1_penalty), from this forward pass rather than another
        (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)  # (B, 1, 28, 28)
        loss_d = loss_d + r1_gamma / 2 * grad.pow(2).flatten(1).sum(1).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    gap = (real_logits - fake_logits).mean().detach()
    if not update_g:
        return {"loss_d": loss_d.detach(), "D(x) - D(G(z))": gap}
    # G: min_G  -E[D(G(z))]
    loss_g = wasserstein_generator_loss(D(x_fake, *cond))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "D(x) - D(G(z))": gap}
