"""Score a set of generated MNIST images against the test set with every metric at once."""

from __future__ import annotations

import torch

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
    reference and 10,000 samples.
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
