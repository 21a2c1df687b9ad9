"""A RealNVP-style normalizing flow for grey-level MNIST (chapter 10), after Dinh, Sohl-Dickstein
and Bengio (2017), "Density estimation using Real NVP".

A flow is an invertible map z = f(x) with a tractable Jacobian. With z ~ N(0, I), the change
of variables gives the exact density

    log p(x) = log N(f(x); 0, I) + log |det df/dx|.

Every layer here is invertible with a cheap log-determinant:

* ``LogitTransform``: pixels v in (0, 1) -> logit(a + (1 - 2a) v), elementwise;
* ``AffineCoupling``: the pixels where a fixed mask b is 1 pass unchanged and set a scale and
  a shift for the others, y = b x + (1 - b) (x exp(s(b x)) + t(b x)); the Jacobian is
  triangular, log |det| = sum of (1 - b) s. The mask is a **checkerboard** over the
  positions, or splits the **channels** in half;
* ``Squeeze``: (C, H, W) -> (4C, H/2, W/2), each 2 x 2 block into four channels (a
  permutation: log |det| = 0);
* ``ActNorm`` (Kingma and Dhariwal 2018, Glow), optional before each coupling: a scale and
  a shift per channel, set from the first minibatch so that its output has zero mean and
  unit variance per channel, then trained; log |det| = H W sum log |scale|.

The **multiscale** architecture: after each scale but the last, half of the channels leave
the flow as part of z ("factored out"), and the rest go on to the next scale, so the later
layers work on fewer dimensions. Images go in as (B, 1, 28, 28) with pixels v in [0, 1]
(already dequantised: see :func:`dequantise`); z comes out flat, (B, 784).

**Dequantisation.** A density p on the pixels' scale (the logit transform below spreads it
over (-0.056, 1.056)^D, a little more than the unit cube, so the probabilities of all x sum
to slightly less than 1) gives the 8-bit image x a probability through
noise u in [0, 1)^D: log P(x) >= E_q[log p(v) - log q(u | x)] - D log 256 with
v = (x + u) / 256, for any q. ``dequantisation="uniform"`` takes q = U[0, 1)^D (log q = 0);
``"variational"`` (Ho et al. 2019, Flow++) learns q(u | x): a small flow of its own,
couplings on Gaussian noise that see x, squashed into (0, 1) by a sigmoid, trained with the
model on the same bound. :meth:`RealNVP.log_likelihood_bound` computes the bracket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from book_utils.models.layers import eval_mode

IMAGE_SHAPE = (1, 28, 28)
NUM_PIXELS = 28 * 28
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class RealNVPConfig:
    hidden: int = 64  # feature maps of each coupling layer's network
    num_blocks: int = 2  # residual blocks in each coupling layer's network
    num_scales: int = 2  # 1: no squeeze at all; 2: 28 -> 14; 3: 28 -> 14 -> 7
    alpha: float = 0.05  # the logit transform's margin a (Dinh et al. use 0.05)
    image_size: int = 28  # side of the square one-channel images (small ones for tests)
    full_res_couplings: int = 3  # checkerboard couplings before the first squeeze
    actnorm: bool = False  # an ActNorm before each coupling
    dequantisation: str = "uniform"  # or "variational": q(u | x) learned (Flow++)
    dequant_couplings: int = 4  # variational: couplings of q's own flow
    dequant_hidden: int = 16  # variational: feature maps of their networks

    def __post_init__(self) -> None:
        if self.dequantisation not in ("uniform", "variational"):
            raise ValueError(
                f"dequantisation must be 'uniform' or 'variational', got {self.dequantisation!r}"
            )
        if self.full_res_couplings < 1 or self.dequant_couplings < 1:
            raise ValueError(f"at least one coupling needed, got {self}")


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per example (B,), summed over all the other dimensions."""
    return -0.5 * (z.pow(2) + LOG_2PI).flatten(1).sum(1)


# --------------------------------------------------------------------------- layers
class LogitTransform(nn.Module):
    """v in (0, 1) -> y = logit(a + (1 - 2a) v): the flow works on an unbounded space."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must be in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * v
        y = torch.log(p) - torch.log1p(-p)
        # dy/dv = (1 - 2a) / (p (1 - p)), elementwise
        log_det = (math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)).flatten(1)
        return y, log_det.sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class Squeeze(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2), each 2 x 2 block of a channel into 4 channels."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)  # (B, C, 2, 2, .., ..)
        return x.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = y.shape
        y = y.view(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)  # (B, C, H/2, 2, W/2, 2)
        return y.reshape(b, c4 // 4, 2 * h, 2 * w)


class ActNorm(nn.Module):
    """y = x exp(log_scale) + shift per channel; the first call in training mode sets both
    so that y has zero mean and unit variance per channel over that minibatch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialised", torch.tensor(False))  # saved with the weights

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not self.initialised:
            with torch.no_grad():
                mean, std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)
                self.log_scale.copy_(-torch.log(std + 1e-6))
                self.shift.copy_(-mean * torch.exp(self.log_scale))
                self.initialised.fill_(True)
        y = x * torch.exp(self.log_scale) + self.shift
        log_det = self.log_scale.sum() * x.shape[2] * x.shape[3]
        return y, log_det.expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.shift) * torch.exp(-self.log_scale)


class CouplingNet(nn.Module):
    """The s and t networks of a coupling layer, as one convolutional net with 2 outputs."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, num_blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(hidden, hidden, 1),
            )
            for _ in range(num_blocks)
        )
        self.out = nn.Conv2d(hidden, 2 * out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # every coupling starts as the identity
        nn.init.zeros_(self.out.bias)
        self.scale = nn.Parameter(torch.ones(1, out_channels, 1, 1))  # s = scale * tanh(.)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)  # residual
        s, t = self.out(torch.relu(h)).chunk(2, dim=1)
        return self.scale * torch.tanh(s), t  # a bounded log-scale keeps training stable


def checkerboard(size: int, parity: int) -> torch.Tensor:
    """(1, 1, size, size) mask: 1 where (row + column) % 2 == parity."""
    idx = torch.arange(size)
    return ((idx[:, None] + idx[None, :]) % 2 == parity).float()[None, None]


class AffineCoupling(nn.Module):
    """y = b x + (1 - b)(x exp(s(b x)) + t(b x)); log |det dy/dx| = sum (1 - b) s.

    ``kind`` "checkerboard": b is a checkerboard over the positions (``parity`` 0 or 1);
    "channel": b keeps the first half of the channels (``parity`` 1: the second half).
    With ``condition_channels`` > 0, s and t also see a condition c (B, that many, S, S)
    passed to ``forward`` and ``inverse``: s(b x, c), t(b x, c)."""

    def __init__(
        self,
        kind: str,
        channels: int,
        size: int,
        parity: int,
        hidden: int,
        num_blocks: int,
        condition_channels: int = 0,
    ):
        super().__init__()
        if kind == "checkerboard":
            mask = checkerboard(size, parity).repeat(1, channels, 1, 1)  # (1, C, S, S)
        elif kind == "channel":
            mask = torch.zeros(1, channels, 1, 1)
            mask[:, : channels // 2] = 1
            mask = mask.flip(1) if parity else mask
        else:
            raise ValueError(f"kind must be 'checkerboard' or 'channel', got {kind!r}")
        self.register_buffer("mask", mask, persistent=False)  # fixed: not in the weights
        self.net = CouplingNet(channels + condition_channels, channels, hidden, num_blocks)

    def _s_t(self, kept: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        s, t = self.net(kept if c is None else torch.cat([kept, c], 1))
        return (1 - self.mask) * s, (1 - self.mask) * t  # the kept pixels: s = t = 0

    def forward(
        self, x: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._s_t(self.mask * x, c)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        s, t = self._s_t(self.mask * y, c)  # b y = b x: the kept pixels are known
        return (y - t) * torch.exp(-s)


class VariationalDequantiser(nn.Module):
    """q(u | x) for 8-bit images x (B, 1, S, S): Gaussian noise e through checkerboard
    couplings that see x, then u = sigmoid(e'). Returns u in (0, 1) and log q(u | x) (B,)."""

    def __init__(self, size: int, num_couplings: int, hidden: int) -> None:
        super().__init__()
        self.couplings = nn.ModuleList(
            AffineCoupling("checkerboard", 1, size, i % 2, hidden, 1, condition_channels=1)
            for i in range(num_couplings)
        )

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.float() / 127.5 - 1  # the condition, in [-1, 1]
        e = torch.randn(x.shape, generator=generator).to(c.device)
        u, log_det = self.transform(e, c)
        return u, standard_normal_log_density(e) - log_det  # log q(u | x)

    def transform(self, e: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u = g(e; c) in (0, 1) and log |det du/de| (B,)."""
        log_det = e.new_zeros(len(e))
        for coupling in self.couplings:
            e, ld = coupling(e, c)
            log_det = log_det + ld
        # u = sigmoid(e): du/de = u (1 - u), and log u (1 - u) = logsigmoid(e) + logsigmoid(-e)
        log_det = log_det + (F.logsigmoid(e) + F.logsigmoid(-e)).flatten(1).sum(1)
        return torch.sigmoid(e), log_det


# --------------------------------------------------------------------------- the flow
class RealNVP(nn.Module):
    """x (B, 1, S, S) in [0, 1] <-> z (B, S*S): logit, then coupling layers on each scale."""

    pixel_range = (0.0, 1.0)  # what sample() returns: grey levels

    def __init__(self, config: RealNVPConfig = RealNVPConfig()) -> None:
        super().__init__()
        size, scales = config.image_size, config.num_scales
        if scales < 1 or size % 2 ** (scales - 1):
            raise ValueError(f"image_size {size} cannot be halved {scales - 1} times")
        if config.hidden < 1 or config.num_blocks < 0:
            raise ValueError(f"hidden >= 1 and num_blocks >= 0 needed, got {config}")
        self.config = config
        self.logit = LogitTransform(config.alpha)
        h, n = config.hidden, config.num_blocks
        self.scales = nn.ModuleList()
        channels = 1

        def couplings(kind: str, count: int) -> list[nn.Module]:
            layers = []
            for i in range(count):
                layers += [ActNorm(channels)] if config.actnorm else []
                layers.append(AffineCoupling(kind, channels, size, i % 2, h, n))
            return layers

        for scale in range(scales):
            if scale == scales - 1:  # the last scale: four checkerboard couplings
                layers = couplings("checkerboard", 4)
            else:  # checkerboard couplings, squeeze, 3 channel couplings; then half leaves
                count = config.full_res_couplings if scale == 0 else 3
                layers = couplings("checkerboard", count)
                channels, size = 4 * channels, size // 2
                layers.append(Squeeze())
                layers += couplings("channel", 3)
                channels //= 2  # the other half is factored out
            self.scales.append(nn.ModuleList(layers))
        self.dequantiser = (
            VariationalDequantiser(
                config.image_size, config.dequant_couplings, config.dequant_hidden
            )
            if config.dequantisation == "variational"
            else None
        )

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f(v) (B, S*S) and log |det df/dv| (B,) for images v (B, 1, S, S) in [0, 1]."""
        size = self.config.image_size
        if v.dim() != 4 or tuple(v.shape[1:]) != (1, size, size):
            raise ValueError(f"RealNVP expects images (B, 1, {size}, {size}), got {tuple(v.shape)}")
        x, log_det = self.logit(v)  # (B, 1, S, S)
        zs = []
        for i, layers in enumerate(self.scales):
            for layer in layers:
                x, ld = layer(x)
                log_det = log_det + ld
            if i < len(self.scales) - 1:
                z, x = x.chunk(2, dim=1)  # factor out half the channels
                zs.append(z.flatten(1))
        zs.append(x.flatten(1))
        return torch.cat(zs, dim=1), log_det  # (B, S*S), (B,)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """v = f^{-1}(z): (B, S*S) -> (B, 1, S, S)."""
        size, scales = self.config.image_size, len(self.scales)
        if z.dim() != 2 or z.shape[1] != size * size:
            raise ValueError(f"z must be (B, {size * size}), got {tuple(z.shape)}")
        # shapes of the factored-out parts and of the last scale's input
        shapes, channels, s = [], 1, size
        for _ in range(scales - 1):
            channels, s = 2 * channels, s // 2
            shapes.append((channels, s, s))
        shapes.append(shapes[-1] if shapes else (1, size, size))
        pieces = z.split([math.prod(shape) for shape in shapes], dim=1)
        x = pieces[-1].view(-1, *shapes[-1])
        for i in reversed(range(scales)):
            if i < scales - 1:
                x = torch.cat([pieces[i].view(-1, *shapes[i]), x], dim=1)
            for layer in reversed(self.scales[i]):
                x = layer.inverse(x)
        return self.logit.inverse(x)

    def log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """log p(v) in nats, one per image: log N(f(v); 0, I) + log |det df/dv|, (B,)."""
        z, log_det = self(v)
        return standard_normal_log_density(z) + log_det

    def dequantise(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bytes x (B, 1, S, S) uint8 -> v = (x + u) / 256 with u ~ q(u | x), and
        log q(u | x) (B,): zero for uniform noise, the dequantiser's for variational."""
        if self.dequantiser is None:
            return dequantise(x, generator), torch.zeros(len(x), device=x.device)
        if x.dtype != torch.uint8:
            raise TypeError(f"dequantise expects uint8 pixel bytes, got {x.dtype}")
        u, log_q = self.dequantiser(x, generator)
        return (x.float() + u) / 256, log_q

    def log_likelihood_bound(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log p(v) - log q(u | x) for one draw of u, in nats (B,): its mean over u,
        minus D log 256, bounds log P(x) from below (``bits_per_dim`` does the rest)."""
        v, log_q = self.dequantise(x, generator)
        return self.log_prob(v) - log_q

    @eval_mode
    def sample(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """n images in [0, 1]: z ~ N(0, temperature^2 I), drawn on the CPU, then f^{-1}(z)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        size = self.config.image_size
        z = temperature * torch.randn(n, size * size, generator=generator)
        return self.inverse(z.to(next(self.parameters()).device)).clamp(0, 1)


# --------------------------------------------------------------------------- likelihood
def dequantise(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bytes (B, 1, S, S) uint8 -> v = (x + u) / 256 with u ~ U[0, 1) per pixel, float."""
    if x.dtype != torch.uint8:
        raise TypeError(f"dequantise expects uint8 pixel bytes, got {x.dtype}")
    u = torch.rand(x.shape, generator=generator, device=x.device if generator is None else "cpu")
    return (x.float() + u.to(x.device)) / 256


def bits_per_dim(log_prob_v: torch.Tensor, num_dims: int = NUM_PIXELS) -> torch.Tensor:
    """The dequantised bound in bits per dimension, from log p(v) of v = (x + u) / 256
    (uniform u; for a learned q pass ``log_likelihood_bound``, log p(v) - log q(u | x)):

    -log P(x) <= E_u[-log p(v)] + D ln 256 (nats), divided by D ln 2 (D = ``num_dims``)."""
    return (-log_prob_v + num_dims * math.log(256)) / (num_dims * math.log(2))
