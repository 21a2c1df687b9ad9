"""Scores of a class-conditional generator (chapter 08): how often a sample is the digit
that was asked for, and FID per class and overall, in the book's classifier's features."""

from __future__ import annotations

import torch

from book_utils.metrics.core import fid
from book_utils.metrics.features import extract
from book_utils.models.classifier import MnistClassifier


def conditional_scores(
    samples: torch.Tensor,
    labels: torch.Tensor,
    reference: torch.Tensor,
    reference_labels: torch.Tensor,
    classifier: MnistClassifier,
) -> dict[str, float]:
    """Conditional accuracy and FID of ``samples`` drawn for the digits ``labels`` (N,),
    against real images ``reference`` of the digits ``reference_labels`` (M,).

    Images as for :func:`~book_utils.metrics.extract` (uint8, or float in [0, 1]). Returns
    "accuracy" (share of samples the classifier reads as the digit asked for), "fid"
    (all samples against all reference images), and for each digit k "accuracy_k" and
    "fid_k" (the samples asked for k against the reference images of k). An FID needs
    more images than the 128 feature dimensions: "fid_k" is left out where either set
    has fewer."""
    labels, reference_labels = torch.as_tensor(labels), torch.as_tensor(reference_labels)
    if labels.shape != (len(samples),) or reference_labels.shape != (len(reference),):
        raise ValueError("give one label per sample and one per reference image")
    features, probs = extract(samples, classifier)  # (N, 128), (N, 10)
    reference_features, _ = extract(reference, classifier)  # (M, 128)
    correct = (probs.argmax(1) == labels).float()  # (N,)
    scores = {"accuracy": correct.mean().item(), "fid": fid(reference_features, features)}
    for k in labels.unique().tolist():
        mine, theirs = labels == k, reference_labels == k
        scores[f"accuracy_{k}"] = correct[mine].mean().item()
        if min(mine.sum(), theirs.sum()) > features.shape[1]:
            scores[f"fid_{k}"] = fid(reference_features[theirs], features[mine])
    return scores
