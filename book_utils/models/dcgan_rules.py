"""The DCGAN design rules of :mod:`book_utils.models.dcgan`, checked on any network.

:func:`generator_rule_violations` and :func:`discriminator_rule_violations` run a network
once, watch the layers act in order, and list the rules it breaks, one sentence each. The
tests check the book's DCGAN with them, and chapter 03's exercise checks the reader's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from book_utils.models.layers import eval_mode

POOLING = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Upsample,
    nn.UpsamplingNearest2d,
    nn.UpsamplingBilinear2d,
)
CONVOLUTIONS = (nn.Conv2d, nn.ConvTranspose2d)
WEIGHT_LAYERS = (nn.Linear, *CONVOLUTIONS, nn.BatchNorm2d)
SHAPE_ONLY = (nn.Flatten, nn.Unflatten, nn.Identity)  # layers that only move numbers around


@eval_mode
def trace(net: nn.Module, x: torch.Tensor) -> tuple[list[nn.Module], torch.Tensor]:
    """Run ``net`` on ``x`` in eval mode, without gradients (its mode is restored); return
    its leaf modules in the order they were called, and its output."""
    order: list[nn.Module] = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        order.append(module)

    hooks = [m.register_forward_hook(record) for m in net.modules() if not list(m.children())]
    try:
        out = net(x)
    finally:
        for hook in hooks:
            hook.remove()
    return order, out


def _pooling(order: list[nn.Module], net: str, how: str) -> list[str]:
    pooling = [type(m).__name__ for m in order if isinstance(m, POOLING)]
    return [f"{net} uses {pooling[0]}: {how} (rule 1)"] if pooling else []


def generator_rule_violations(G: nn.Module, z: torch.Tensor) -> list[str]:
    """The DCGAN rules 1-5 that generator ``G`` breaks, one sentence each (none: ``[]``).

    G runs on ``z`` (B, latent_dim), which shows its layers in the order they act, and
    again with its last convolution's weights scaled by 1000, to test its output range at
    the limits (the weights are restored)."""
    order, _ = trace(G, z)
    found = _pooling(order, "G", "upsample with strided transposed convolutions")
    if not any(isinstance(m, nn.ConvTranspose2d) and m.stride[0] > 1 for m in order):
        found.append("no strided nn.ConvTranspose2d: G should learn its upsampling (rule 1)")
    if not any(isinstance(m, nn.BatchNorm2d) for m in order):
        found.append("no nn.BatchNorm2d: batch norm belongs on G's hidden layers (rule 2)")
    convs = [i for i, m in enumerate(order) if isinstance(m, CONVOLUTIONS)]
    if convs and any(isinstance(m, nn.BatchNorm2d) for m in order[convs[-1] :]):
        found.append("batch norm after G's last convolution: leave the output layer free (rule 2)")
    if not any(isinstance(m, nn.ReLU) for m in order):
        found.append("no nn.ReLU: G's hidden layers use ReLU (rule 3)")
    allowed = (*WEIGHT_LAYERS, *SHAPE_ONLY, *POOLING, nn.ReLU, nn.Tanh)
    others = [type(m).__name__ for m in order if not isinstance(m, allowed)]
    if others:
        found.append(f"G uses {others[0]}: its hidden layers use ReLU, its output tanh (rule 3)")
    after_last, x = order[convs[-1] + 1 :] if convs else [], torch.zeros(1)
    if convs:
        weight = order[convs[-1]].weight
        saved = weight.detach().clone()
        try:
            with torch.no_grad():
                weight.mul_(1000)
            _, x = trace(G, z)
        finally:
            with torch.no_grad():
                weight.copy_(saved)
    if not (torch.isfinite(x).all() and x.abs().max() <= 1) or not all(
        isinstance(m, (nn.Tanh, nn.BatchNorm2d, *SHAPE_ONLY)) for m in after_last
    ):
        found.append("outputs leave [-1, 1]: end G with a tanh after its last convolution (rule 4)")
    linear = [i for i, m in enumerate(order) if isinstance(m, nn.Linear)]
    if len(linear) > 1 or (linear and convs and convs[0] < linear[0]):
        found.append("an nn.Linear besides the projection of z, G's first layer (rule 5)")
    return found


def discriminator_rule_violations(D: nn.Module, x: torch.Tensor) -> list[str]:
    """The DCGAN rules 1-5 that discriminator ``D`` breaks, one sentence each (none: ``[]``);
    ``x`` (B, 1, H, W) is run through D to see its layers in the order they act."""
    order, _ = trace(D, x)
    found = _pooling(order, "D", "downsample with strided convolutions")
    if not any(isinstance(m, nn.Conv2d) and m.stride[0] > 1 for m in order):
        found.append("no strided nn.Conv2d: D should learn its downsampling (rule 1)")
    if not any(isinstance(m, nn.BatchNorm2d) for m in order):
        found.append("no nn.BatchNorm2d: batch norm belongs on D's hidden layers (rule 2)")
    if not (order[1:] and isinstance(order[0], nn.Conv2d) and isinstance(order[1], nn.LeakyReLU)):
        found.append("D's input convolution should go straight into LeakyReLU (rule 2)")
    slopes = {m.negative_slope for m in order if isinstance(m, nn.LeakyReLU)}
    if slopes - {0.2} or any(isinstance(m, nn.ReLU) for m in order):
        found.append("D's activations should all be LeakyReLU(0.2) (rule 3)")
    if any(isinstance(m, nn.Linear) for m in order):
        found.append("D has an nn.Linear: it ends with a convolution over the whole map (rule 5)")
    return found
