"""Toy distributions with exact densities: 1-D and 2-D mixtures of Gaussians.

Chapter 01 uses them to check GAN theory against numbers: a 1-D mixture for the
optimal discriminator and the Jensen-Shannon link, and a ring (or grid) of 2-D
Gaussians for mode coverage and mode collapse.

Every sampler takes an optional ``torch.Generator`` so a seeded generator gives the
same samples on every run. Densities are computed exactly with ``logsumexp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

LOG_2PI = math.log(2.0 * math.pi)  # the constant of every Gaussian log-density


def _as_float_tensor(x: torch.Tensor) -> torch.Tensor:
    """Keep a floating dtype (float64 for precise integration), turn anything else to float32."""
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.float()


def _as_1d_tensor(values: Sequence[float] | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32).flatten().clone()
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    return t


def _normalised_weights(weights: Sequence[float] | torch.Tensor | None, k: int) -> torch.Tensor:
    if weights is None:
        return torch.full((k,), 1.0 / k)
    w = _as_1d_tensor(weights, "weights")
    if w.numel() != k:
        raise ValueError(f"got {w.numel()} weights for {k} components")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    return w / w.sum()


class GaussianMixture1D:
    """p(x) = sum_k w_k N(x; mu_k, sigma_k^2) on the real line."""

    def __init__(
        self,
        means: Sequence[float] | torch.Tensor,
        stds: Sequence[float] | torch.Tensor,
        weights: Sequence[float] | torch.Tensor | None = None,
    ) -> None:
        self.means = _as_1d_tensor(means, "means")  # (K,)
        self.stds = _as_1d_tensor(stds, "stds")  # (K,)
        if self.stds.numel() != self.means.numel():
            raise ValueError(f"got {self.stds.numel()} stds for {self.means.numel()} means")
        if (self.stds <= 0).any():
            raise ValueError("stds must be positive")
        self.weights = _normalised_weights(weights, self.means.numel())  # (K,), sums to 1

    @property
    def n_modes(self) -> int:
        return self.means.numel()

    def mean(self) -> float:
        """E[x] = sum_k w_k mu_k."""
        return float((self.weights * self.means).sum())

    def variance(self) -> float:
        """Var[x] = sum_k w_k (sigma_k^2 + mu_k^2) - E[x]^2."""
        second_moment = (self.weights * (self.stds**2 + self.means**2)).sum()
        return float(second_moment) - self.mean() ** 2

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n samples, shape (n,): pick a component, then add its Gaussian noise."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, generator=generator)  # (n,)
        return self.means[k] + self.stds[k] * eps

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), elementwise, same shape and floating dtype as x."""
        x = _as_float_tensor(x)
        means, stds, weights = (t.to(x) for t in (self.means, self.stds, self.weights))
        z = (x.unsqueeze(-1) - means) / stds  # (..., K)
        log_normal = -0.5 * z**2 - torch.log(stds) - 0.5 * LOG_2PI  # (..., K)
        return torch.logsumexp(torch.log(weights) + log_normal, dim=-1)  # (...)

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """p(x), elementwise, same shape as x."""
        return self.log_prob(x).exp()

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) = P(X <= x) = sum_k w_k Phi((x - mu_k) / sigma_k), elementwise."""
        x = _as_float_tensor(x)
        means, stds, weights = (t.to(x) for t in (self.means, self.stds, self.weights))
        return (weights * torch.special.ndtr((x.unsqueeze(-1) - means) / stds)).sum(-1)

    def __repr__(self) -> str:
        return (
            f"GaussianMixture1D(means={self.means.tolist()}, stds={self.stds.tolist()}, "
            f"weights={[round(w, 4) for w in self.weights.tolist()]})"
        )


class GaussianMixture2D:
    """p(x) = sum_k w_k N(x; mu_k, sigma^2 I) in the plane, one isotropic std for all modes."""

    def __init__(
        self,
        means: Sequence[Sequence[float]] | torch.Tensor,
        std: float,
        weights: Sequence[float] | torch.Tensor | None = None,
    ) -> None:
        means = torch.as_tensor(means, dtype=torch.float32).clone()
        if means.ndim != 2 or means.shape[1] != 2 or means.shape[0] == 0:
            raise ValueError(f"means must have shape (K, 2), got {tuple(means.shape)}")
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.means = means  # (K, 2)
        self.std = float(std)
        self.weights = _normalised_weights(weights, means.shape[0])  # (K,)

    @property
    def n_modes(self) -> int:
        return self.means.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n points, shape (n, 2)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, 2, generator=generator)  # (n, 2)
        return self.means[k] + self.std * eps

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for points x of shape (..., 2); returns shape (...), in x's float dtype."""
        x = _as_float_tensor(x)
        if x.shape[-1] != 2:
            raise ValueError(f"x must have shape (..., 2), got {tuple(x.shape)}")
        means, weights = self.means.to(x), self.weights.to(x)
        sq_dist = ((x.unsqueeze(-2) - means) ** 2).sum(-1)  # (..., K)
        log_normal = -0.5 * sq_dist / self.std**2 - 2 * math.log(self.std) - LOG_2PI  # (..., K)
        return torch.logsumexp(torch.log(weights) + log_normal, dim=-1)  # (...)

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """p(x) for points x of shape (..., 2); returns shape (...)."""
        return self.log_prob(x).exp()

    def __repr__(self) -> str:
        return f"GaussianMixture2D(n_modes={self.n_modes}, std={self.std})"


def ring_of_gaussians(
    n_modes: int = 8, radius: float = 2.0, std: float = 0.02
) -> GaussianMixture2D:
    """n_modes equally weighted Gaussians evenly spaced on a circle (Metz et al., 2017)."""
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float32) / n_modes  # (K,)
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (K, 2)
    return GaussianMixture2D(means, std)


def grid_of_gaussians(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    """side x side equally weighted Gaussians on a square grid centred at the origin."""
    coords = spacing * (torch.arange(side, dtype=torch.float32) - (side - 1) / 2)  # (side,)
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")  # (side, side) each
    means = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (side*side, 2)
    return GaussianMixture2D(means, std)


def mode_coverage(
    samples: torch.Tensor,
    mixture: GaussianMixture2D,
    n_std: float = 3.0,
    min_fraction: float = 0.01,
) -> dict:
    """How many modes of a 2-D mixture the samples cover, and how many samples are good.

    The rule (after Metz et al., 2017 and Srivastava et al., 2017):

    * a sample is *high quality* if it lies within ``n_std`` standard deviations
      (Euclidean distance ``n_std * mixture.std``) of its nearest mode mean;
    * a mode is *covered* if at least ``min_fraction`` of all samples are high-quality
      samples whose nearest mode it is (default 1%, so a few stray points do not count).

    Returns a dict with ``modes_covered`` (int), ``n_modes`` (int),
    ``high_quality`` (fraction of samples that are high quality, in [0, 1]),
    ``counts`` (list: high-quality samples per mode) and ``mode_kl``, the KL divergence
    from the high-quality samples' mode histogram to the mixture weights (0 for a
    perfectly balanced generator, log K when all samples sit on one of K equal modes;
    ``inf`` if there is no high-quality sample).
    """
    samples = torch.as_tensor(samples, dtype=torch.float32).detach().cpu()
    if samples.ndim != 2 or samples.shape[1] != 2 or samples.shape[0] == 0:
        raise ValueError(f"samples must have shape (N, 2) with N > 0, got {tuple(samples.shape)}")
    dist = torch.cdist(samples, mixture.means)  # (N, K)
    nearest_dist, nearest = dist.min(dim=1)  # (N,), (N,)
    good = nearest_dist < n_std * mixture.std  # (N,)
    counts = torch.bincount(nearest[good], minlength=mixture.n_modes)  # (K,)
    n = samples.shape[0]
    covered = int((counts >= min_fraction * n).sum())
    if counts.sum() > 0:
        q = counts.float() / counts.sum()  # (K,) mode histogram of the good samples
        nz = q > 0
        mode_kl = float((q[nz] * (q[nz] / mixture.weights[nz]).log()).sum())
    else:
        mode_kl = math.inf
    return {
        "modes_covered": covered,
        "n_modes": mixture.n_modes,
        "high_quality": float(good.float().mean()),
        "counts": counts.tolist(),
        "mode_kl": mode_kl,
    }
