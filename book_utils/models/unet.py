"""A small U-Net for 28x28 MNIST with a time embedding (chapter 06), after Ronneberger et
al. (2015) and the denoising network of Ho et al. (2020).

The network maps a noisy image x_t and its time t in [0, 1] to an image of the same
shape: the noise in x_t (DDPM, :class:`DDPMUNet`) or the velocity of the straight path
from noise to data (flow matching, :class:`FlowUNet`). Both classes are this one network;
they differ only in how ``sample`` turns its output into images (book_utils/diffusion.py).

Shapes, with c = config.channels:

    x (B, 1, 28, 28) -> (B, c, 28, 28) -> down (B, 2c, 14, 14) -> down (B, 2c, 7, 7)
                     <- (B, c, 28, 28) <- up   (B, 2c, 14, 14) <- up   (B, 2c, 7, 7)

and each "up" stage also receives the output of the "down" stage of its size (the skip
connections that give the U its name).

With ``num_classes > 0`` (chapter 08) the network also takes a label y: an embedding of y
is added to the time embedding, f(x_t, t, y). The embedding has one row more than there
are classes, the "null" label num_classes, which stands for "no label": training replaces
a share of the labels with it, so that one network learns f(x_t, t, y) and f(x_t, t), as
classifier-free guidance needs (Ho and Salimans, 2022). With the default 0 the network
is exactly chapter 06's, so its saved models load unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from book_utils import diffusion
from book_utils.models.layers import check_labels, eval_mode


@dataclass(frozen=True)
class UNetConfig:
    channels: int = 64  # feature maps at 28x28; twice as many at 14x14 and 7x7
    time_dim: int = 128  # size of the time embedding added to every residual block
    dropout: float = 0.1  # dropout inside the residual blocks, during training only
    schedule: str = "cosine"  # DDPM's noise schedule: "cosine" or "linear" (not for flows)
    num_timesteps: int = 1000  # DDPM's T (not used by flows)
    sample_steps: int = 50  # network evaluations of sample() by default
    num_classes: int = 0  # > 0: a class-conditional network (plus one "null" label)
    guidance: float = 0.0  # classifier-free guidance scale w of sample() (conditional only)


def time_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features of times ``t`` (B,) in [0, 1], as for a transformer's positions:
    sin and cos of ``scale * t`` at ``dim // 2`` frequencies 10000^(-k / half),
    k = 0, ..., half - 1: from 1 down to 10000^(-(half - 1) / half), just above 1/10,000."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)  # (half,)
    angles = scale * t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 8 groups (fewer if the channels do not divide): batch-independent."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with the time embedding added between them, plus a shortcut."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_dim, out_ch)  # one shift per channel, for this t
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # the block starts as its shortcut
        nn.init.zeros_(self.conv2.bias)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out_ch, H, W)
        h = h + self.time(emb)[:, :, None, None]  # (B, out_ch, 1, 1), broadcast over H, W
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))  # (B, out_ch, H, W)
        return h + self.shortcut(x)


class UNet(nn.Module):
    """f(x_t, t): images (B, 1, 28, 28) and times (B,) in [0, 1] -> (B, 1, 28, 28)."""

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        c, d, p = config.channels, config.time_dim, config.dropout
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        if config.num_classes > 0:  # rows 0..num_classes - 1, and the null label
            self.label_embedding = nn.Embedding(config.num_classes + 1, d)
        self.conv_in = nn.Conv2d(1, c, 3, padding=1)
        self.down1 = ResBlock(c, c, d, p)  # 28x28
        self.pool1 = nn.Conv2d(c, c, 3, stride=2, padding=1)  # 28 -> 14
        self.down2 = ResBlock(c, 2 * c, d, p)  # 14x14
        self.pool2 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)  # 14 -> 7
        self.middle = ResBlock(2 * c, 2 * c, d, p)  # 7x7
        self.up2 = ResBlock(4 * c, 2 * c, d, p)  # 14x14, after the skip from down2
        self.up1 = ResBlock(3 * c, c, d, p)  # 28x28, after the skip from down1
        self.conv_out = nn.Sequential(group_norm(c), nn.SiLU(), nn.Conv2d(c, 1, 3, padding=1))

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        if t.dim() == 0:
            t = t.expand(len(x))  # one time for the whole batch
        emb = self.time_mlp(time_embedding(t, self.config.time_dim))  # (B, time_dim)
        k = self.config.num_classes
        if k > 0:  # y in 0..k - 1, or k (the null label); None means the null label
            y = torch.full((len(x),), k) if y is None else check_labels(y, k + 1, len(x))
            emb = emb + self.label_embedding(y.to(x.device))  # (B, time_dim)
        elif y is not None:
            raise ValueError("this network is not conditional (num_classes = 0); give no y")
        h = self.conv_in(x)  # (B, c, 28, 28)
        skip1 = self.down1(h, emb)  # (B, c, 28, 28)
        skip2 = self.down2(self.pool1(skip1), emb)  # (B, 2c, 14, 14)
        h = self.middle(self.pool2(skip2), emb)  # (B, 2c, 7, 7)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, 2c, 14, 14)
        h = self.up2(torch.cat([h, skip2], dim=1), emb)  # (B, 4c, 14, 14) -> (B, 2c, 14, 14)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, 2c, 28, 28)
        h = self.up1(torch.cat([h, skip1], dim=1), emb)  # (B, 3c, 28, 28) -> (B, c, 28, 28)
        return self.conv_out(h)  # (B, 1, 28, 28)

    pixel_range = (-1.0, 1.0)  # what sample() returns: images scaled to [-1, 1]


def _steps(model: UNet, steps: int | None) -> int:
    steps = model.config.sample_steps if steps is None else steps
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive whole number, got {steps}")
    return int(steps)


class DDPMUNet(UNet):
    """The U-Net trained to predict the noise eps in x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps."""

    def schedule(self) -> diffusion.NoiseSchedule:
        """The noise schedule the network was trained with (its config names it)."""
        return diffusion.NoiseSchedule.named(self.config.schedule, self.config.num_timesteps)

    @eval_mode
    def sample(
        self, n: int, generator: torch.Generator | None = None, steps: int | None = None
    ) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [-1, 1] by DDIM (eta = 0) with ``steps`` network
        evaluations (default ``config.sample_steps``); noise drawn with ``generator``."""
        return diffusion.ddim_sample(self, self.schedule(), n, _steps(self, steps), generator)


class FlowUNet(UNet):
    """The U-Net trained to predict the velocity x - z of the path x_t = (1 - t) z + t x."""

    @eval_mode
    def sample(
        self, n: int, generator: torch.Generator | None = None, steps: int | None = None
    ) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [-1, 1] by Euler's method with ``steps`` network
        evaluations (default ``config.sample_steps``); noise drawn with ``generator``."""
        return diffusion.euler_sample(self, n, _steps(self, steps), generator)


class GuidedFlowUNet(FlowUNet):
    """The class-conditional flow network of chapter 08, sampled with classifier-free
    guidance: v = (1 + w) v(x, t, y) - w v(x, t, null)."""

    def __init__(self, config: UNetConfig = UNetConfig(num_classes=10)) -> None:
        if config.num_classes < 1:
            raise ValueError("GuidedFlowUNet needs num_classes >= 1 in its config")
        super().__init__(config)

    @eval_mode
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        labels: torch.Tensor | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """n images (n, 1, 28, 28) in [-1, 1] of the digits ``labels`` (n,) (default: the
        classes in turn, 0, 1, ..., 9, 0, ...), by Euler's method with ``steps`` steps and
        guidance scale ``guidance`` (defaults: ``config.sample_steps``, ``config.guidance``)."""
        k = self.config.num_classes
        labels = torch.arange(n) % k if labels is None else check_labels(labels, k, n)
        w = self.config.guidance if guidance is None else guidance
        return diffusion.guided_euler_sample(self, n, _steps(self, steps), labels, w, generator)
