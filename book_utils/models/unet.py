"""A small U-Net for 28x28 MNIST with a time embedding (chapter 06), after Ronneberger et
al. (2015) and the denoising network of Ho et al. (2020).

The network maps a noisy image x_t and its time t in [0, 1] to an image of the same
shape: the noise in x_t (DDPM, :class:`DDPMUNet`) or the velocity of the straight path
from noise to data (flow matching, :class:`FlowUNet`). Both classes are this one network;
they differ only in how ``sample`` turns its output into images (book_utils/diffusion.py).

Shapes, with c = config.channels, ``channel_mult = (1, 2, 2)`` and ``stem = 1``:

    x (B, 1, 28, 28) -> (B, c, 28, 28) -> down (B, 2c, 14, 14) -> down (B, 2c, 7, 7)
                     <- (B, c, 28, 28) <- up   (B, 2c, 14, 14) <- up   (B, 2c, 7, 7)

and each "up" stage also receives the output of the "down" stage of its size (the skip
connections that give the U its name). ``channel_mult`` gives the width of each level
(times c); each level after the first halves the image's height and width, and the last
one is the middle of the U.

With ``stem = 2`` the network first folds each 2 x 2 block of pixels into 4 channels
(``pixel_unshuffle``: (B, 1, 28, 28) -> (B, 4, 14, 14), nothing lost) and unfolds its
output at the end (``pixel_shuffle``), so that its first level works at 14 x 14: a
quarter of the positions, so about a quarter of the arithmetic of a level at 28 x 28.
With ``attention``, the middle of the U adds self-attention over its positions (7 x 7 =
49 with ``stem = 2`` and ``channel_mult = (1, 2)``), so that every position sees every
other one (Ho et al. use it at 16 x 16).

``num_blocks`` residual blocks sit at each level on each side of the U, and in its
middle (the default 2 is chapter 06's network; 1 is the network of the earlier saved
models, whose config.json says so).

With ``num_classes > 0`` (chapter 08) the network also takes a label y: an embedding of y
is added to the time embedding, f(x_t, t, y). The embedding has one row more than there
are classes, the "null" label num_classes, which stands for "no label": training replaces
a share of the labels with it, so that one network learns f(x_t, t, y) and f(x_t, t), as
classifier-free guidance needs (Ho and Salimans, 2022). With the default 0 the network
is exactly chapter 06's, so its saved models load unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from book_utils import diffusion
from book_utils.models.layers import check_labels, eval_mode


@dataclass(frozen=True)
class UNetConfig:
    channels: int = 64  # c: feature maps of the first level
    channel_mult: tuple[int, ...] = (1, 2)  # widths of the levels, times c
    stem: int = 2  # pixel-unshuffle factor: 2 works at 14x14 on 4 channels, 1 at 28x28
    attention: bool = True  # self-attention in the middle of the U (the smallest level)
    num_blocks: int = 2  # residual blocks at each level, on each side of the U
    time_dim: int = 128  # size of the time embedding added to every residual block
    dropout: float = 0.1  # dropout inside the residual blocks, during training only
    schedule: str = "cosine"  # DDPM's noise schedule: "cosine" or "linear" (not for flows)
    num_timesteps: int = 1000  # DDPM's T (not used by flows)
    sample_steps: int = 20  # network evaluations of sample() by default
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


class SelfAttention(nn.Module):
    """Multi-head self-attention over the positions of a feature map, plus a shortcut."""

    def __init__(self, channels: int, head_dim: int = 32) -> None:
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)  # the block starts as its shortcut
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).view(B, 3, self.heads, C // self.heads, H * W)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, H*W, C // heads)
        h = F.scaled_dot_product_attention(q, k, v)  # (B, heads, H*W, C // heads)
        h = h.transpose(-1, -2).reshape(B, C, H, W)  # (B, C, H, W)
        return x + self.out(h)


class UNet(nn.Module):
    """f(x_t, t): images (B, 1, 28, 28) and times (B,) in [0, 1] -> (B, 1, 28, 28)."""

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        d, p, s = config.time_dim, config.dropout, config.stem
        width = [config.channels * m for m in config.channel_mult]  # per level
        if len(width) < 2 or 28 % (s * 2 ** (len(width) - 1)):
            raise ValueError(f"{config}: each level must halve a whole image size")
        if int(config.num_blocks) != config.num_blocks or config.num_blocks < 1:
            raise ValueError(f"num_blocks must be a whole number >= 1, got {config.num_blocks}")
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        if config.num_classes > 0:  # rows 0..num_classes - 1, and the null label
            self.label_embedding = nn.Embedding(config.num_classes + 1, d)
        self.conv_in = nn.Conv2d(s * s, width[0], 3, padding=1)
        # down: a block at each level but the last, then a strided conv to the next size
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        for i in range(len(width) - 1):
            self.down.append(ResBlock(width[max(i - 1, 0)], width[i], d, p))
            self.pool.append(nn.Conv2d(width[i], width[i], 3, stride=2, padding=1))
        self.middle = ResBlock(width[-2], width[-1], d, p)
        self.attention = SelfAttention(width[-1]) if config.attention else nn.Identity()
        # up, from the smallest size: a block on [upsampled, skip] at each level
        self.up = nn.ModuleList(
            ResBlock(width[i + 1] + width[i], width[i], d, p) for i in range(len(width) - 1)
        )
        # num_blocks > 1: more blocks after each of those (down, middle, up), same width
        extra = config.num_blocks - 1
        self.more_down, self.more_up = nn.ModuleList(), nn.ModuleList()
        for i in range(len(width) - 1):
            self.more_down.append(
                nn.ModuleList(ResBlock(width[i], width[i], d, p) for _ in range(extra))
            )
            self.more_up.append(
                nn.ModuleList(ResBlock(width[i], width[i], d, p) for _ in range(extra))
            )
        self.more_middle = nn.ModuleList(ResBlock(width[-1], width[-1], d, p) for _ in range(extra))
        self.conv_out = nn.Sequential(
            group_norm(width[0]), nn.SiLU(), nn.Conv2d(width[0], s * s, 3, padding=1)
        )

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
        s = self.config.stem
        h = self.conv_in(F.pixel_unshuffle(x, s))  # (B, s*s, 28/s, 28/s) -> (B, c, 28/s, 28/s)
        skips = []
        for block, more, pool in zip(self.down, self.more_down, self.pool, strict=True):
            h = block(h, emb)  # (B, width[i], size, size)
            for extra in more:
                h = extra(h, emb)
            skips.append(h)
            h = pool(h)  # (B, width[i], size / 2, size / 2)
        h = self.attention(self.middle(h, emb))  # (B, width[-1], smallest, smallest)
        for extra in self.more_middle:
            h = extra(h, emb)
        for i in reversed(range(len(self.up))):
            h = F.interpolate(h, scale_factor=2, mode="nearest")  # twice the size
            h = self.up[i](torch.cat([h, skips[i]], dim=1), emb)  # (B, width[i], size, size)
            for extra in self.more_up[i]:
                h = extra(h, emb)
        return F.pixel_shuffle(self.conv_out(h), s)  # (B, s*s, 28/s, 28/s) -> (B, 1, 28, 28)

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
    """The U-Net trained to predict the velocity x - z of the path x_t = (1 - t) z + t x.

    A conditional one (``num_classes > 0``, trained with label dropout) samples with the
    null label: the unconditional model (chapter 06); :class:`GuidedFlowUNet` samples
    the same weights with labels and guidance (chapter 08)."""

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

    @classmethod
    def from_flow(
        cls, flow: FlowUNet, guidance: float | None = None, sample_steps: int | None = None
    ) -> GuidedFlowUNet:
        """The same weights (and record, if any), sampled with labels and guidance: a
        conditional FlowUNet trained with label dropout, such as chapter 06's.
        ``guidance`` and ``sample_steps`` replace the config's defaults, if given."""
        config = flow.config
        if guidance is not None:
            config = replace(config, guidance=float(guidance))
        if sample_steps is not None:
            config = replace(config, sample_steps=int(sample_steps))
        guided = cls(config).to(next(flow.parameters()).device)
        guided.load_state_dict(flow.state_dict())
        if hasattr(flow, "record"):
            guided.record = flow.record
        return guided.train(flow.training)

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
