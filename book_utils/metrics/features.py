"""From images to the feature space of the book's MNIST classifier.

:func:`check_images` validates what a reader hands to a metric, :func:`load_classifier`
loads the committed classifier checkpoint, and :func:`extract` returns penultimate-layer
features and class probabilities for a batch of images.
"""

from __future__ import annotations

from pathlib import Path

import torch

from book_utils.checkpoint import CHECKPOINT_DIR, from_pretrained
from book_utils.data import to_signed_unit, unit_to_signed
from book_utils.models.classifier import MnistClassifier

CLASSIFIER_CHECKPOINT = CHECKPOINT_DIR / "mnist_classifier"  # the model folder


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Validate MNIST-shaped images and return them as float (N, 1, 28, 28) in [-1, 1].

    Accepted: uint8 in [0, 255], or float in [0, 1]; shaped (N, 28, 28) or (N, 1, 28, 28).
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"{name} must be shaped (N, 28, 28) or (N, 1, 28, 28), got {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError(f"{name} is empty")
    # The classifier sees [-1, 1], like the GAN generators' outputs.
    if images.dtype == torch.uint8:
        return to_signed_unit(images)  # (N, 1, 28, 28)
    if not images.is_floating_point():
        raise ValueError(f"{name} must be uint8 in [0, 255] or float in [0, 1], got {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or inf; check the model that produced them")
    low, high = float(images.min()), float(images.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise ValueError(
            f"float {name} must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]; "
            "map generator outputs in [-1, 1] with book_utils.data.signed_to_unit first"
        )
    return unit_to_signed(images.float().clamp(0, 1))


def load_classifier(
    path: str | Path = CLASSIFIER_CHECKPOINT, device: str | torch.device = "cpu"
) -> MnistClassifier:
    """The trained MNIST classifier, in eval mode, from its model folder."""
    return from_pretrained(Path(path), device, model_class=MnistClassifier)


@torch.no_grad()
def extract(
    images: torch.Tensor,
    classifier: MnistClassifier,
    batch_size: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, feature_dim) and class probabilities (N, 10) of a set of images."""
    x = check_images(images)
    device = next(classifier.parameters()).device
    features, probs = [], []
    for batch in torch.split(x, batch_size):
        h = classifier.features(batch.to(device))
        features.append(h.float().cpu())
        probs.append(torch.softmax(classifier.head(h), dim=1).float().cpu())
    return torch.cat(features), torch.cat(probs)
