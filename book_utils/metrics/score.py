"""Score a set of generated MNIST images against the test set with every metric at once,
or a generator's FID alone, again and again, while it trains."""

from __future__ import annotations

import torch
from torch import nn

from book_utils.data import from_signed_unit
from book_utils.metrics.core import class_score, fid, kid, precision_recall
from book_utils.metrics.features import extract, load_classifier
from book_utils.models.classifier import MnistClassifier


def score_samples(
    samples: torch.Tensor,
    reference: torch.Tensor,
    classifier: MnistClassifier | None = None,
    seed: int = 0,
) -> dict[str, object]:
    """FID, KID, class score, precision, recall and digit histogram of ``samples``.

    ``samples`` and ``reference`` are MNIST images (uint8 in [0, 255] or float in [0, 1],
    shaped (N, 28, 28) or (N, 1, 28, 28)); the book uses the 10,000 test images as the
    reference and 10,000 samples. ``kid`` and ``kid_std`` are raw squared MMDs (mean and
    standard deviation over 100 random subsets); the book prints them x 10^3.
    """
    classifier = classifier or load_classifier()
    feats_fake, probs_fake = extract(samples, classifier)
    feats_real, _ = extract(reference, classifier)
    generator = torch.Generator().manual_seed(seed)
    kid_mean, kid_std = kid(feats_real, feats_fake, generator=generator)
    precision, recall = precision_recall(feats_real, feats_fake)
    score_mean, score_std = class_score(probs_fake)
    histogram = torch.bincount(probs_fake.argmax(1), minlength=10)
    return {
        "num_samples": len(feats_fake),
        "num_reference": len(feats_real),
        "fid": fid(feats_real, feats_fake),
        "kid": kid_mean,
        "kid_std": kid_std,
        "class_score": score_mean,
        "class_score_std": score_std,
        "precision": precision,
        "recall": recall,
        "digit_histogram": histogram.tolist(),
    }


class FidProbe:
    """FID of a generator's samples against a fixed set of real images, for scoring it
    again and again during training.

    The features of ``reference`` (the test images, say) are computed once. ``probe(G)``
    draws as many samples as there are reference images with ``G.sample(n, generator)``
    (images in [-1, 1], noise seed 0: the same noise at every call) and returns their FID
    against the reference. ``floor`` is the FID of ``floor_images`` (as many real images
    that are not the reference, training images, say) against the reference: the best a
    generator can hope for. Images are given as for :func:`score_samples`.
    """

    def __init__(
        self,
        reference: torch.Tensor,
        floor_images: torch.Tensor,
        classifier: MnistClassifier | None = None,
    ) -> None:
        self.classifier = classifier or load_classifier()
        self.reference_features, _ = extract(reference, self.classifier)
        floor_features, _ = extract(floor_images, self.classifier)
        self.floor = fid(floor_features, self.reference_features)

    def __call__(self, G: nn.Module) -> float:
        n = len(self.reference_features)
        samples = G.sample(n, generator=torch.Generator().manual_seed(0))  # (n, 1, 28, 28)
        features, _ = extract(from_signed_unit(samples), self.classifier)
        return fid(self.reference_features, features)
