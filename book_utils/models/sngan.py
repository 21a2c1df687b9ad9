"""A GAN for 28x28 MNIST with a spectrally normalised discriminator (chapter 07).

G is a DCGAN-sized convolutional generator: z -> 7x7 -> 14x14 -> 28x28, batch norm and
ReLU on its hidden maps, tanh on its output (pixels in [-1, 1], as in chapter 03), with a
3x3 convolution after each upsampling. D has no batch norm (a critic must score each image
on its own, which the gradient penalty and the R1 penalty assume): strided convolutions,
LeakyReLU(0.1), then global sum pooling (or mean pooling, ``pooling="mean"``) to a
feature vector phi(x) and one linear output. With ``spectral_norm=True`` every weight of D
is divided by its largest singular value (Miyato et al. 2018), estimated by one power
iteration per forward pass in training mode. That makes each dense layer's Lipschitz
constant about 1 (the estimate falls short of sigma, so at or a little above 1), but not
D's: a convolution's kernel is normalised as a reshaped matrix, which bounds the
convolution only up to a factor ceil(k/s) (k x k kernel, stride s), and the sum over the
7 x 7 positions before the output has norm 7 (the mean, 1/7). D is Lipschitz with some
constant, not 1 (chapter 07 measures it).

Conditional models (``num_classes > 0``, chapter 08):

- G(z, y) uses conditional batch norm: each class has its own scale and shift after the
  normalisation (initialised to 1 and 0, the unconditional case).
- D is a projection discriminator (Miyato & Koyama 2018):
  D(x, y) = psi(phi(x)) + <embed(y), phi(x)>.

D returns unbounded scores (logits for the hinge or logistic losses, critic values for the
Wasserstein loss), one per image, never probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from book_utils.models.layers import check_labels, eval_mode, latent_noise


@dataclass(frozen=True)
class SNGANConfig:
    z_dim: int = 128  # size of the noise vector z
    width: int = 64  # channels at 28x28 in D and G's last map; 2x at 14x14, 4x at 7x7
    spectral_norm: bool = True  # spectral normalisation on every layer of D
    num_classes: int = 0  # 0: unconditional; > 0: G(z, y) and a projection D(x, y)
    pooling: str = "sum"  # D's features: "sum" or "mean" over the 7 x 7 positions

    def __post_init__(self) -> None:
        if self.pooling not in ("sum", "mean"):
            raise ValueError(f'pooling must be "sum" or "mean", got {self.pooling!r}')
        for name in ("z_dim", "width"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be a positive whole number, got {getattr(self, name)}"
                )
        if int(self.num_classes) != self.num_classes or self.num_classes < 0:
            raise ValueError(f"num_classes must be 0 or more, got {self.num_classes}")


def _labels(y: torch.Tensor | None, batch: int, num_classes: int) -> torch.Tensor | None:
    """None for an unconditional model (which takes no labels), else the labels checked by
    :func:`~book_utils.models.layers.check_labels`."""
    if num_classes == 0:
        if y is not None:
            raise ValueError("this model is unconditional (num_classes=0); pass no labels")
        return None
    return check_labels(y, num_classes, batch)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift depend on the class: gamma_y * x_hat + beta_y."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma = self.scale(y)[:, :, None, None]  # (B, C, 1, 1)
        beta = self.shift(y)[:, :, None, None]  # (B, C, 1, 1)
        return gamma * self.norm(x) + beta  # (B, C, H, W)


class SNGANGenerator(nn.Module):
    """G: z (B, z_dim) [and labels y (B,)] -> images (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, config: SNGANConfig = SNGANConfig()) -> None:
        super().__init__()
        self.config = config
        w, k = config.width, config.num_classes
        self.project = nn.Linear(config.z_dim, 4 * w * 7 * 7)
        self.up1 = nn.ConvTranspose2d(4 * w, 2 * w, kernel_size=4, stride=2, padding=1)
        self.conv1 = nn.Conv2d(2 * w, 2 * w, kernel_size=3, padding=1)
        self.up2 = nn.ConvTranspose2d(2 * w, w, kernel_size=4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(w, 1, kernel_size=3, padding=1)
        # One norm before each layer after the projection; class-dependent if conditional.
        channels = (4 * w, 2 * w, 2 * w, w)
        if k:
            self.norms = nn.ModuleList(ConditionalBatchNorm2d(c, k) for c in channels)
        else:
            self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in channels)
        self.act = nn.ReLU()

    def _norm(self, i: int, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.act(self.norms[i](h, y) if self.config.num_classes else self.norms[i](h))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z must be shaped (B, {self.config.z_dim}), got {tuple(z.shape)}")
        y = _labels(y, len(z), self.config.num_classes)
        w = self.config.width
        h = self.project(z).view(-1, 4 * w, 7, 7)  # (B, 4w, 7, 7)
        h = self.up1(self._norm(0, h, y))  # (B, 2w, 14, 14)
        h = self.conv1(self._norm(1, h, y))  # (B, 2w, 14, 14)
        h = self.up2(self._norm(2, h, y))  # (B, w, 28, 28)
        h = self.conv2(self._norm(3, h, y))  # (B, 1, 28, 28)
        return torch.tanh(h)

    pixel_range = (-1.0, 1.0)  # what sample() returns: tanh outputs

    @eval_mode
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """n images G(z[, y]) in eval mode, no gradients; z ~ N(0, I) from ``generator``.

        ``labels`` (conditional models only): n class labels; None draws them uniformly at
        random with ``generator``, after z.
        """
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive whole number, got {n}")
        n, k = int(n), self.config.num_classes
        z = latent_noise(self, n, self.config.z_dim, generator)  # (n, z_dim)
        if k and labels is None:
            labels = torch.randint(0, k, (n,), generator=generator)  # (n,)
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.int64).to(z.device)  # (n,)
        return self(z, labels)  # (n, 1, 28, 28)


class SNGANDiscriminator(nn.Module):
    """D: images (B, 1, 28, 28) [and labels y (B,)] -> scores (B,), unbounded."""

    def __init__(self, config: SNGANConfig = SNGANConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.width
        layers = [
            nn.Conv2d(1, w, kernel_size=3, padding=1),  # (B, w, 28, 28)
            nn.Conv2d(w, 2 * w, kernel_size=4, stride=2, padding=1),  # (B, 2w, 14, 14)
            nn.Conv2d(2 * w, 2 * w, kernel_size=3, padding=1),  # (B, 2w, 14, 14)
            nn.Conv2d(2 * w, 4 * w, kernel_size=4, stride=2, padding=1),  # (B, 4w, 7, 7)
            nn.Conv2d(4 * w, 4 * w, kernel_size=3, padding=1),  # (B, 4w, 7, 7)
        ]
        self.psi = nn.Linear(4 * w, 1)  # the unconditional score psi(phi(x))
        self.embed = nn.Embedding(config.num_classes, 4 * w) if config.num_classes else None
        if config.spectral_norm:
            layers = [_spectral_norm(layer) for layer in layers]
            self.psi = _spectral_norm(self.psi)
            if self.embed is not None:
                self.embed = _spectral_norm(self.embed)
        self.convs = nn.ModuleList(layers)
        self.act = nn.LeakyReLU(0.1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): the convolutions, then a sum (or mean) over the 7x7 positions. (B, 4w)"""
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"x must be shaped (B, 1, 28, 28), got {tuple(x.shape)}")
        h = x
        for conv in self.convs:
            h = self.act(conv(h))  # (B, w, 28, 28) ... (B, 4w, 7, 7)
        if self.config.pooling == "mean":
            return h.mean(dim=(2, 3))  # (B, 4w)
        return h.sum(dim=(2, 3))  # (B, 4w)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = _labels(y, len(x), self.config.num_classes)
        phi = self.features(x)  # (B, 4w)
        score = self.psi(phi).squeeze(1)  # (B,)
        if self.embed is not None:  # projection: + <embed(y), phi(x)>
            score = score + (self.embed(y) * phi).sum(dim=1)  # (B,)
        return score
