"""The book's sample-quality metrics, written from their definitions.

``core`` holds the metrics on feature vectors; ``features`` turns MNIST images into the
feature space of the book's classifier; :func:`score_samples` runs them all at once, as
``python -m book_utils.metrics SAMPLES`` does; :class:`FidProbe` scores a generator's FID
again and again while it trains.
"""

from book_utils.metrics.conditional import conditional_scores
from book_utils.metrics.core import (
    class_score,
    fid,
    frechet_distance,
    gaussian_statistics,
    kid,
    mean_and_standard_error,
    mmd2_unbiased,
    nearest_neighbours,
    parzen_log_likelihood,
    precision_recall,
    select_parzen_sigma,
)
from book_utils.metrics.features import check_images, extract, load_classifier
from book_utils.metrics.memorisation import MemorisationReport, memorisation_check
from book_utils.metrics.score import FidProbe, score_samples

__all__ = [
    "FidProbe",
    "MemorisationReport",
    "check_images",
    "class_score",
    "conditional_scores",
    "extract",
    "fid",
    "frechet_distance",
    "gaussian_statistics",
    "kid",
    "load_classifier",
    "mean_and_standard_error",
    "memorisation_check",
    "mmd2_unbiased",
    "nearest_neighbours",
    "parzen_log_likelihood",
    "precision_recall",
    "score_samples",
    "select_parzen_sigma",
]
