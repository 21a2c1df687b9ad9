"""Sample-quality metrics, each written from its definition.

All functions here take *features* (or flattened pixels): 2-D float tensors of shape
(N, D). :mod:`book_utils.metrics.features` turns images into such features with the
book's MNIST classifier.

* FID: the squared Fréchet (2-Wasserstein) distance between Gaussians fitted to two
  feature sets (Heusel et al. 2017).
* KID: unbiased squared MMD with a cubic polynomial kernel, over random subsets
  (Bińkowski et al. 2018); the book reports it x 10^3, with its spread over the subsets.
* Class score: the Inception Score of Salimans et al. (2016) with the MNIST classifier's
  class probabilities in place of Inception's.
* Precision and recall: k-nearest-neighbour balls (Kynkäänniemi et al. 2019).
* Nearest-neighbour distances for a memorisation check.
* Parzen-window log-likelihood (Breuleux et al. 2009; used by Goodfellow et al. 2014).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


# --------------------------------------------------------------------------- input checks
def check_features(features: torch.Tensor, name: str = "features", min_rows: int = 2) -> None:
    """Raise a ValueError unless ``features`` is a finite 2-D float tensor of >= min_rows."""
    if not isinstance(features, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (N, D), got {type(features).__name__}"
        )
    if features.ndim != 2:
        raise ValueError(
            f"{name} must have shape (N, D) (one feature vector per row), got shape "
            f"{tuple(features.shape)}; flatten images with x.flatten(1)."
        )
    if not features.is_floating_point():
        raise ValueError(f"{name} must be a float tensor, got dtype {features.dtype}")
    if features.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {features.shape[0]}")
    if not torch.isfinite(features).all():
        bad = (~torch.isfinite(features)).any(dim=1).sum().item()
        raise ValueError(f"{name} contains NaN or inf in {bad} rows; check the model's output")


def _check_pair(a: torch.Tensor, b: torch.Tensor, min_rows: int = 2) -> None:
    check_features(a, "first feature set", min_rows)
    check_features(b, "second feature set", min_rows)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}; "
            "extract both with the same network"
        )


# --------------------------------------------------------------------------- FID
def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of a feature set, in float64."""
    check_features(features)
    n, dim = features.shape
    if n <= dim:
        raise ValueError(
            f"FID needs more samples than feature dimensions to estimate a "
            f"covariance: got {n} samples of {dim}-dimensional features. Use at "
            f"least {dim + 1} (the book uses 10,000)."
        )
    x = features.double()
    mu = x.mean(dim=0)
    centred = x - mu
    sigma = centred.T @ centred / (n - 1)
    return mu, sigma


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric PSD matrix, by its eigendecomposition."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    root = eigenvalues.clamp(min=0).sqrt()  # tiny negative eigenvalues: rounding error
    return (eigenvectors * root) @ eigenvectors.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}).

    This is the *squared* Fréchet distance, the squared 2-Wasserstein distance,
    between N(mu1, sigma1) and N(mu2, sigma2); like pytorch-fid's
    ``calculate_frechet_distance``, it returns the square, which is what FID is.

    The matrix sigma1 @ sigma2 is not symmetric, and taking its square root directly
    (``scipy.linalg.sqrtm``, as the reference implementation does) can return complex
    numbers or fail when the covariances are near-singular. We use instead that
    ``sigma1 @ sigma2`` has the same eigenvalues as the symmetric PSD matrix
    ``s @ sigma2 @ s`` with ``s = sigma1^{1/2}``, so the trace of its square root is the
    sum of square roots of the eigenvalues of a symmetric matrix: computed in float64
    with ``eigh``, with rounding-level negative eigenvalues clipped to zero.
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two Gaussians must have the same dimension")
    s = _psd_sqrt(sigma1)
    middle = s @ sigma2 @ s
    middle = (middle + middle.T) / 2  # symmetric up to rounding; make it exactly so
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    value = diff @ diff + torch.trace(sigma1) + torch.trace(sigma2) - 2 * trace_sqrt
    return float(value.clamp(min=0))


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """FID: the squared Fréchet distance of Gaussians fitted to two feature sets."""
    _check_pair(features_a, features_b)
    mu_a, sigma_a = gaussian_statistics(features_a)
    mu_b, sigma_b = gaussian_statistics(features_b)
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)


# --------------------------------------------------------------------------- KID
def polynomial_kernel(
    a: torch.Tensor,
    b: torch.Tensor,
    degree: int = 3,
) -> torch.Tensor:
    """k(x, y) = (x . y / D + 1)^degree for every pair of rows."""
    return (a @ b.T / a.shape[1] + 1) ** degree


def mmd2_unbiased(a: torch.Tensor, b: torch.Tensor, degree: int = 3) -> float:
    """Unbiased estimate of the squared MMD between the distributions of a and b.

    MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y); the within-set means leave out the
    diagonal (a sample paired with itself), which makes the estimate unbiased.
    """
    a, b = a.double(), b.double()
    m, n = a.shape[0], b.shape[0]
    k_aa = polynomial_kernel(a, a, degree)
    k_bb = polynomial_kernel(b, b, degree)
    k_ab = polynomial_kernel(a, b, degree)
    term_aa = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    term_bb = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return float(term_aa + term_bb - 2 * k_ab.mean())


def kid(
    features_a: torch.Tensor,
    features_b: torch.Tensor,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of the unbiased MMD^2 over subsets.

    Both are raw squared MMDs in the units of the features; the book prints them x 10^3.
    """
    _check_pair(features_a, features_b)
    size = min(subset_size, features_a.shape[0], features_b.shape[0])
    values = []
    for _ in range(num_subsets):
        idx_a = torch.randperm(features_a.shape[0], generator=generator)[:size]
        idx_b = torch.randperm(features_b.shape[0], generator=generator)[:size]
        values.append(mmd2_unbiased(features_a[idx_a], features_b[idx_b], degree))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=True)) if num_subsets > 1 else 0.0


# --------------------------------------------------------------------------- class score
def class_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """The Inception Score with MNIST class probabilities: exp(E_x KL(p(y|x) || p(y))).

    High when each sample is confidently one digit (sharp p(y|x)) and the digits are
    balanced (broad p(y)); at most the number of classes. Mean and std over ``splits``.
    """
    check_features(probs, "probs", min_rows=splits)
    sums_to_one = torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-4)
    if (probs < 0).any() or not sums_to_one:
        message = "probs must be class probabilities, non-negative rows summing to 1"
        raise ValueError(message)
    p = probs.double().clamp(min=1e-12)
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(dim=0, keepdim=True)  # p(y) over this split
        kl = (part * (part.log() - marginal.log())).sum(dim=1)  # KL(p(y|x) || p(y))
        scores.append(kl.mean().exp())
    t = torch.stack(scores)
    return float(t.mean()), float(t.std(unbiased=True)) if splits > 1 else 0.0


# --------------------------------------------------------------------------- neighbours
def pairwise_distances(
    a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Euclidean distances between every row of a and every row of b, (len(a), len(b)).

    float32 is plenty to rank neighbours and is twice as fast as float64 on a CPU; the
    Parzen estimate, which exponentiates squared distances, asks for float64.
    """
    a, b = a.to(dtype), b.to(dtype)
    squared = (a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)
    return squared.clamp(min=0).sqrt()


def nearest_neighbours(
    queries: torch.Tensor, reference: torch.Tensor, chunk_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance to, and index of, each query's nearest row of ``reference``."""
    _check_pair(queries, reference, min_rows=1)
    distances, indices = [], []
    for chunk in torch.split(queries, chunk_size):
        d, i = pairwise_distances(chunk, reference).min(dim=1)
        distances.append(d)
        indices.append(i)
    return torch.cat(distances), torch.cat(indices)


def kth_neighbour_radii(
    features: torch.Tensor,
    k: int = 3,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Distance from each row to its k-th nearest *other* row of the same set."""
    if features.shape[0] <= k:
        raise ValueError(f"need more than k={k} samples, got {features.shape[0]}")
    radii = []
    for chunk in torch.split(features, chunk_size):
        d = pairwise_distances(chunk, features)
        # the smallest distance is the point to itself (0); the k-th neighbour: index k
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _fraction_inside_balls(
    queries: torch.Tensor,
    centres: torch.Tensor,
    radii: torch.Tensor,
    chunk_size: int = 1024,
) -> float:
    inside = []
    for chunk in torch.split(queries, chunk_size):
        inside.append((pairwise_distances(chunk, centres) <= radii).any(dim=1))
    return float(torch.cat(inside).double().mean())


def precision_recall(
    real: torch.Tensor,
    fake: torch.Tensor,
    k: int = 3,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each real sample gets a ball reaching its k-th nearest real neighbour; their union
    estimates the support of the real distribution. Precision is the fraction of fake
    samples inside it (are the samples realistic?); recall swaps the roles (does the
    model cover the real data?).
    """
    _check_pair(real, fake, min_rows=k + 1)
    precision = _fraction_inside_balls(fake, real, kth_neighbour_radii(real, k))
    recall = _fraction_inside_balls(real, fake, kth_neighbour_radii(fake, k))
    return precision, recall


# --------------------------------------------------------------------------- Parzen
def parzen_log_likelihood(
    x: torch.Tensor, centres: torch.Tensor, sigma: float, chunk_size: int = 256
) -> torch.Tensor:
    """log p(x) under an isotropic Gaussian kernel density with the given centres.

    p(x) = 1/M sum_m N(x; c_m, sigma^2 I); returns one log-density per row of x (nats).
    """
    _check_pair(x, centres, min_rows=1)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    m, dim = centres.shape
    log_norm = math.log(m) + 0.5 * dim * math.log(2 * math.pi * sigma**2)
    out = []
    for chunk in torch.split(x, chunk_size):
        sq = pairwise_distances(chunk, centres, dtype=torch.float64) ** 2
        out.append(torch.logsumexp(-sq / (2 * sigma**2), dim=1) - log_norm)
    return torch.cat(out)


def select_parzen_sigma(
    validation: torch.Tensor, centres: torch.Tensor, sigmas: Sequence[float]
) -> tuple[float, list[float]]:
    """The sigma of the grid with the highest mean validation log-likelihood."""
    scores = [float(parzen_log_likelihood(validation, centres, s).mean()) for s in sigmas]
    best = max(range(len(sigmas)), key=scores.__getitem__)
    return float(sigmas[best]), scores


def mean_and_standard_error(values: torch.Tensor) -> tuple[float, float]:
    """Mean and its standard error, std / sqrt(N)."""
    values = values.double()
    return float(values.mean()), float(values.std(unbiased=True) / math.sqrt(len(values)))
