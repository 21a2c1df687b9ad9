"""A nearest-neighbour memorisation check: are generated samples copies of training images?

A generator that hands back its training images scores as well as real data on FID, KID,
the class score, precision and recall (chapter 05). This check catches it in pixel space.
For every sample it finds the nearest training image (Euclidean distance between 784
pixels in [0, 1]) and compares that distance with the same distance for *held-out* real
images, which no model has seen: a genuinely new digit is typically about as far from
the training set as a held-out digit, while a copy sits at distance (nearly) zero.

Two summaries come out of it:

* the median ratio, median sample distance / median held-out distance: about 1 for
  samples that are as new as held-out digits, near 0 for copies;
* the near-copy fraction: the share of samples closer to the training set than the
  ``quantile`` (by default the 1st percentile) of the held-out distances. Held-out digits
  themselves give about ``quantile``; a memoriser gives nearly 1.

The check sees pixel-level copies only: a copy shifted by a pixel or two is as far from
its original in pixel space as a new digit is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from book_utils.data import signed_to_unit, to_unit
from book_utils.metrics.core import nearest_neighbours
from book_utils.metrics.features import check_images


def to_pixels(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """MNIST images (uint8, or float in [0, 1]) as (N, 784) float32 pixels in [0, 1]."""
    x = check_images(images, name)  # validated, (N, 1, 28, 28) in [-1, 1]
    if images.dtype == torch.uint8:
        return to_unit(images).flatten(1)  # bytes / 255 exactly, (N, 784)
    return signed_to_unit(x).flatten(1)  # (N, 784)


def nearest_training_images(
    images: torch.Tensor, train: torch.Tensor, chunk_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel distance of each image to its nearest training image, and that image's index.

    ``images`` and ``train`` are MNIST images (uint8, or float in [0, 1]; (N, 28, 28) or
    (N, 1, 28, 28)), or pixels already flattened by :func:`to_pixels`. Distances are
    Euclidean over 784 pixels in [0, 1]; the work goes in chunks of ``chunk_size`` images.
    """
    queries, reference = _as_pixels(images, "images"), _as_pixels(train, "train")
    return nearest_neighbours(queries, reference, chunk_size=chunk_size)


def _as_pixels(x: torch.Tensor, name: str) -> torch.Tensor:
    """Images -> (N, 784) float32 pixels; pixels already flattened pass after a range check."""
    if isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == 28 * 28:
        if not x.is_floating_point() or x.numel() == 0 or x.min() < 0 or x.max() > 1:
            raise ValueError(
                f"flattened {name} must be float pixels in [0, 1] shaped (N, 784); "
                "pass images shaped (N, 28, 28) instead, or use to_pixels"
            )
        return x.float()
    return to_pixels(x, name)


@dataclass(frozen=True)
class MemorisationReport:
    """The result of :func:`memorisation_check`."""

    distances: torch.Tensor  # (N,) each sample's pixel distance to its nearest training image
    neighbours: torch.Tensor  # (N,) index into the training set of that nearest image
    baseline: torch.Tensor  # (M,) the same distance for held-out real images
    quantile: float  # the baseline quantile below which a sample is a near copy
    threshold: float  # that quantile of the baseline distances

    @property
    def near_copies(self) -> torch.Tensor:
        """Indices of the samples closer to the training set than ``threshold``, closest first."""
        idx = torch.nonzero(self.distances < self.threshold).flatten()
        return idx[self.distances[idx].argsort()]

    @property
    def near_copy_fraction(self) -> float:
        """Share of samples that are near copies; held-out real images give about ``quantile``."""
        return float((self.distances < self.threshold).double().mean())

    @property
    def median_ratio(self) -> float:
        """median(sample distances) / median(held-out distances): ~1 new digits, ~0 copies."""
        return float(self.distances.median() / self.baseline.median())

    def closest(self, k: int) -> torch.Tensor:
        """Indices of the k samples nearest to the training set, closest first."""
        k = min(k, len(self.distances))
        return self.distances.topk(k, largest=False).indices

    def summary(self) -> str:
        """One line for a report."""
        sample_median, held_out_median = self.distances.median(), self.baseline.median()
        return (
            f"median distance {sample_median:.2f} vs {held_out_median:.2f} for held-out images"
            f" (ratio {self.median_ratio:.2f}); near copies "
            f"{self.near_copy_fraction:.1%} (held-out images: {self.quantile:.0%} by definition)"
        )


def memorisation_check(
    samples: torch.Tensor,
    train: torch.Tensor,
    held_out: torch.Tensor | None = None,
    *,
    baseline: torch.Tensor | None = None,
    quantile: float = 0.01,
    chunk_size: int = 512,
) -> MemorisationReport:
    """How far each sample is from the training set, against held-out real images.

    ``samples``, ``train`` and ``held_out`` are MNIST images (uint8, or float in
    [0, 1]; (N, 28, 28) or (N, 1, 28, 28)). The held-out distances are the expensive
    part and the same for every model: pass them once computed as ``baseline`` (the
    ``baseline`` of an earlier report, or ``nearest_training_images(held_out,
    train)[0]``) instead of ``held_out``. Give exactly one of the two.
    """
    if not 0 < quantile < 0.5:
        raise ValueError(f"quantile must lie in (0, 0.5), e.g. 0.01; got {quantile}")
    if (held_out is None) == (baseline is None):
        raise ValueError(
            "give exactly one of held_out (real images the model never saw) or "
            "baseline (their distances to the training set, e.g. the .baseline of an "
            "earlier report)"
        )
    train_pixels = _as_pixels(train, "train")  # converted once, used twice
    if baseline is None:
        baseline, _ = nearest_training_images(held_out, train_pixels, chunk_size)
    if not isinstance(baseline, torch.Tensor) or baseline.ndim != 1:
        message = "baseline must be a 1-D tensor of distances, one per held-out image"
        raise ValueError(message)
    needed = math.ceil(1 / quantile)
    if len(baseline) < needed:
        raise ValueError(
            f"{len(baseline)} held-out images are too few to estimate the "
            f"{quantile:.0%} quantile of their distances; use at least {needed}"
        )
    distances, neighbours = nearest_training_images(samples, train_pixels, chunk_size)
    baseline = baseline.double()
    threshold = float(torch.quantile(baseline, quantile))
    return MemorisationReport(distances, neighbours, baseline, quantile, threshold)
