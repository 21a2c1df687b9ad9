"""What a trained generative model is for (chapter 09): restoring damaged digits with the
diffusion model or the VAE, editing digits in the VAE's latent space, telling generated
digits from real ones, and the measurements that score each.

Images here are (B, 1, 28, 28) tensors. The diffusion model works on pixels in [-1, 1],
the VAE and the measurements on pixels in [0, 1]; each function says which it takes.
A mask is 1 where a pixel is known and 0 where it is hidden.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from IPython.display import Markdown
from torch import nn
from torch.nn import functional as F

from book_utils.diffusion import NoiseSchedule
from book_utils.metrics.train_classifier import random_shift

SIDE = 28  # MNIST images are 28 x 28


# --------------------------------------------------------------------------- masks
def half_mask(hidden: str = "bottom") -> torch.Tensor:
    """A (1, 1, 28, 28) mask that hides one half of the image: "bottom", "top", "left" or
    "right"."""
    mask = torch.ones(1, 1, SIDE, SIDE)
    halves = {
        "bottom": (slice(SIDE // 2, None), slice(None)),
        "top": (slice(None, SIDE // 2), slice(None)),
        "left": (slice(None), slice(None, SIDE // 2)),
        "right": (slice(None), slice(SIDE // 2, None)),
    }
    if hidden not in halves:
        raise ValueError(f"hidden must be one of {sorted(halves)}, got {hidden!r}")
    rows, cols = halves[hidden]
    mask[..., rows, cols] = 0
    return mask


def square_mask(size: int = 12) -> torch.Tensor:
    """A (1, 1, 28, 28) mask with a centred square hole of ``size`` x ``size`` pixels."""
    if int(size) != size or not 1 <= size <= SIDE:
        raise ValueError(f"size must be a whole number from 1 to {SIDE}, got {size}")
    mask = torch.ones(1, 1, SIDE, SIDE)
    start = (SIDE - size) // 2
    mask[..., start : start + size, start : start + size] = 0
    return mask


def _check_images(x: torch.Tensor, name: str = "images") -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor shaped (B, 1, 28, 28)")
    if x.dim() != 4 or x.shape[1:] != (1, SIDE, SIDE):
        raise ValueError(f"{name} must be shaped (B, 1, 28, 28), got {tuple(x.shape)}")


def _check_mask(mask: torch.Tensor) -> None:
    _check_images(mask, "mask")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("a mask holds only 0 (hidden) and 1 (known)")


# --------------------------------------------------------------------------- what we know
def paste(known: torch.Tensor, guess: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The known pixels of ``known`` where mask = 1, the guess's elsewhere."""
    return mask * known + (1 - mask) * guess


def downsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Average pooling of ``factor`` x ``factor`` blocks: (B, 1, 28, 28) -> (B, 1, 14, 14)."""
    return F.avg_pool2d(x, factor)


def project_low_resolution(x: torch.Tensor, y_low: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """The image nearest to x (in squared error) whose downsampled version is y_low: add
    to every block the difference between the block's target mean and its mean now."""
    return x + F.interpolate(y_low - downsample(x, factor), scale_factor=factor, mode="nearest")


def noise_level_time(schedule: NoiseSchedule, sigma: float) -> int:
    """The t whose x_t / sqrt(abar_t) = x0 + sqrt((1 - abar_t) / abar_t) eps has noise of
    standard deviation nearest ``sigma``: abar_t nearest 1 / (1 + sigma^2)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    target = 1 / (1 + sigma**2)
    return int((schedule.alpha_bar[1:] - target).abs().argmin()) + 1


# --------------------------------------------------------------------------- diffusion
@torch.no_grad()
def restore(
    model: nn.Module,
    schedule: NoiseSchedule,
    x_start: torch.Tensor,
    steps: int,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
    t_start: int | None = None,
    eta: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDIM from x_start at time t_start (default T) down to 0 in ``steps`` steps, with the
    guess x0_hat made to agree with what is known at every step: ``project(x0_hat)``
    (Wang et al.'s null-space projection, DDNM). Pixels in [-1, 1]; the last step returns
    the projected guess itself, which may pass the pixel range by a little."""
    _check_images(x_start, "x_start")
    t_start = schedule.num_timesteps if t_start is None else t_start
    if not 1 <= steps <= t_start <= schedule.num_timesteps:
        raise ValueError(f"need 1 <= steps <= t_start <= T, got {steps}, {t_start}")
    taus = torch.linspace(t_start, 0, steps + 1).round().long().tolist()
    device, T, x = x_start.device, schedule.num_timesteps, x_start
    for now, prev in zip(taus[:-1], taus[1:], strict=True):
        t = torch.full((len(x),), now)
        eps_hat = model(x, t.to(device) / T)  # (B, 1, 28, 28)
        x0_hat = schedule.x0_from_eps(x, t, eps_hat).clamp(-1, 1)
        if project is not None:
            x0_hat = project(x0_hat)  # agree with the known pixels / low resolution
        eps_hat = schedule.eps_from_x0(x, t, x0_hat)
        abar, abar_prev = schedule.alpha_bar[now], schedule.alpha_bar[prev]
        sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
        direction = (1 - abar_prev - sigma**2).clamp(min=0).sqrt()
        x = float(abar_prev.sqrt()) * x0_hat + float(direction) * eps_hat
        if prev > 0:
            x = x + float(sigma) * torch.randn(x.shape, generator=generator).to(device)
    return x


# --------------------------------------------------------------------------- the VAE
def vae_inpaint(
    vae: nn.Module, x: torch.Tensor, mask: torch.Tensor, steps: int = 200, lr: float = 0.05
) -> torch.Tensor:
    """Fill the hidden pixels of x (pixels in [0, 1]) with the VAE: the code z that
    maximises log p(known pixels | z) + log p(z), found by Adam from the encoder's mean of
    the masked image; returns the decoder's pixel means for it, (B, 1, 28, 28)."""
    _check_images(x)
    _check_mask(mask)
    with torch.no_grad():
        z0, _ = vae.encode(x * mask)  # (B, latent_dim): the hidden pixels read as 0
    z = z0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        logits = vae.decode(z)  # (B, 1, 28, 28)
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        loss = (nll * mask).sum() + 0.5 * (z**2).sum()  # -log p(known|z) - log p(z)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return torch.sigmoid(vae.decode(z))


# --------------------------------------------------------------------------- baselines
def nearest_on_known(
    x: torch.Tensor, mask: torch.Tensor, train: torch.Tensor, chunk_size: int = 256
) -> torch.Tensor:
    """For each image of x, the training image nearest to it on the known pixels (all
    pixels in [0, 1]; ``train`` shaped (N, 1, 28, 28)); the mask is the same for all."""
    _check_images(x)
    _check_mask(mask)
    if mask.shape[0] != 1:
        raise ValueError("nearest_on_known takes one mask for every image, shaped (1, 1, 28, 28)")
    keep = mask.flatten().bool()  # (784,)
    reference = train.flatten(1)[:, keep]  # (N, known)
    best = []
    for chunk in torch.split(x.flatten(1)[:, keep], chunk_size):
        best.append(torch.cdist(chunk, reference).argmin(dim=1))
    return train[torch.cat(best)]


# --------------------------------------------------------------------------- measurements
def hidden_error(
    x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Root mean squared error per image (B,) over the hidden pixels (all pixels if no
    mask), in the units of the pixels ([0, 1] for the book's measurements)."""
    hidden = torch.ones_like(x) if mask is None else (1 - mask).expand_as(x)
    squared = ((x_hat - x) ** 2 * hidden).flatten(1).sum(1)
    return (squared / hidden.flatten(1).sum(1)).sqrt()


def ink(x: torch.Tensor) -> torch.Tensor:
    """Thickness as the mean pixel value (B,), pixels in [0, 1]: more ink, thicker strokes."""
    _check_images(x)
    return x.flatten(1).mean(1)


def slant(x: torch.Tensor) -> torch.Tensor:
    """The slant (B,) from the image's second moments: the horizontal shift per row of
    height, cov(column, height) / var(height) with the ink as weights; > 0 leans right."""
    _check_images(x)
    w = x[:, 0].clamp(min=0) + 1e-8  # (B, 28, 28) ink as weights
    rows = torch.arange(SIDE, dtype=x.dtype, device=x.device)
    height = -rows[:, None].expand(SIDE, SIDE)  # up is positive
    column = rows[None, :].expand(SIDE, SIDE)
    total = w.sum((1, 2))
    h_mean = (w * height).sum((1, 2)) / total  # (B,)
    c_mean = (w * column).sum((1, 2)) / total
    dh = height - h_mean[:, None, None]  # (B, 28, 28)
    dc = column - c_mean[:, None, None]
    return (w * dc * dh).sum((1, 2)) / (w * dh * dh).sum((1, 2))


def attribute_direction(
    z: torch.Tensor, values: torch.Tensor, labels: torch.Tensor, fraction: float = 0.25
) -> torch.Tensor:
    """A direction (latent_dim,) in latent space along which an attribute grows: within
    each digit, the mean code of its ``fraction`` highest values minus that of its lowest,
    averaged over the digits (so that the direction does not turn one digit into another).
    Scaled to unit length."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must lie in (0, 0.5], got {fraction}")
    if not len(z) == len(values) == len(labels):
        raise ValueError("z, values and labels need one row per image")
    differences = []
    for digit in labels.unique():
        zd, vd = z[labels == digit], values[labels == digit]
        k = max(1, int(fraction * len(vd)))
        order = vd.argsort()
        differences.append(zd[order[-k:]].mean(0) - zd[order[:k]].mean(0))
    direction = torch.stack(differences).mean(0)
    return direction / direction.norm()


# --------------------------------------------------------------------------- detection
def shifted(
    x: torch.Tensor, max_shift: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Each image (pixels in [0, 1]) moved by a random whole number of pixels in
    [-max_shift, max_shift] along each axis, the background (0) filling in."""
    _check_images(x)
    return (random_shift(2 * x - 1, max_shift, generator) + 1) / 2


class Detector(nn.Module):
    """A small convolutional network that tells real digits from generated ones: one
    logit per image, > 0 for "generated". Pixels in [0, 1]."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1),  # (B, c, 14, 14)
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),  # (B, 2c, 7, 7)
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(2 * channels * 7 * 7, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)  # (B,)


# --------------------------------------------------------------------------- tables
def markdown_table(rows: dict[str, dict], columns: dict[str, str]) -> Markdown:
    """A Markdown table: one row per entry of ``rows`` (a dict of values by column), one
    column per entry of ``columns`` (its format, e.g. ".1f"; "" for text). Missing: —."""
    lines = ["| | " + " | ".join(columns) + " |", "|---" + "|---:" * len(columns) + "|"]
    for name, values in rows.items():
        cells = []
        for column, fmt in columns.items():
            value = values.get(column)
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            cells.append("—" if missing else format(value, fmt))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return Markdown("\n".join(lines))
