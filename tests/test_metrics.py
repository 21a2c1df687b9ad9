"""The book's metrics against independent implementations and hand computations."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from book_utils.metrics import (
    check_images,
    class_score,
    extract,
    fid,
    gaussian_statistics,
    kid,
    mean_and_standard_error,
    mmd2_unbiased,
    nearest_neighbours,
    parzen_log_likelihood,
    precision_recall,
    select_parzen_sigma,
)
from book_utils.models.classifier import MnistClassifier


@pytest.fixture(scope="module")
def classifier() -> MnistClassifier:
    torch.manual_seed(0)
    return MnistClassifier().eval()  # untrained: the metrics must agree whatever the features


@pytest.fixture(scope="module")
def image_sets() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    blobs = torch.rand(400, 28, 28, generator=g)
    real = (blobs * 255).to(torch.uint8)
    fake = (blobs.pow(2) * 255).to(torch.uint8)  # a shifted distribution
    return real, fake


class FeatureExtractor(nn.Module):
    """The book's classifier features, as torchmetrics' custom feature extractor."""

    num_features = 128

    def __init__(self, classifier: MnistClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(check_images(images)).double()


def test_fid_matches_torchmetrics_and_pytorch_fid(classifier, image_sets):
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = image_sets
    feats_real, _ = extract(real, classifier)
    feats_fake, _ = extract(fake, classifier)
    ours = fid(feats_real, feats_fake)

    metric = FrechetInceptionDistance(feature=FeatureExtractor(classifier))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    theirs = float(metric.compute())
    assert ours == pytest.approx(theirs, rel=1e-4)

    a, b = feats_real.double().numpy(), feats_fake.double().numpy()
    reference = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert ours == pytest.approx(reference, rel=1e-4)
    assert ours > 0


def test_kid_matches_torchmetrics(classifier, image_sets):
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = image_sets
    feats_real, _ = extract(real, classifier)
    feats_fake, _ = extract(fake, classifier)
    # One subset holding every sample makes torchmetrics' random subsets irrelevant.
    metric = KernelInceptionDistance(
        feature=FeatureExtractor(classifier), subsets=1, subset_size=len(real)
    )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    theirs = float(metric.compute()[0])
    ours = mmd2_unbiased(feats_real, feats_fake)
    assert ours == pytest.approx(theirs, rel=1e-4)
    mean, std = kid(feats_real, feats_fake, num_subsets=1, subset_size=len(real))
    assert mean == pytest.approx(theirs, rel=1e-4) and std == 0.0


def test_fid_and_kid_are_near_zero_for_the_same_distribution():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 8, generator=g)
    b = torch.randn(4000, 8, generator=g)
    shifted = b + 1.0
    assert fid(a, b) < 0.05
    assert fid(a, shifted) == pytest.approx(8.0, rel=0.05)  # ||mu1 - mu2||^2 = 8
    kid_same, _ = kid(a, b, num_subsets=20, generator=g)
    kid_shift, _ = kid(a, shifted, num_subsets=20, generator=g)
    assert abs(kid_same) < 0.01 < kid_shift


def test_fid_closed_form_for_diagonal_gaussians():
    # For diagonal covariances the trace term is sum (sqrt(s1) - sqrt(s2))^2.
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 3, generator=g) * torch.tensor([1.0, 2.0, 3.0])
    b = torch.randn(200_000, 3, generator=g) * torch.tensor([2.0, 2.0, 1.0]) + 0.5
    expected = 3 * 0.25 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert fid(a, b) == pytest.approx(expected, rel=0.02)


def test_class_score_hand_computation():
    # Confident and balanced: score = number of classes. Uniform: score = 1.
    confident = torch.eye(10).repeat(5, 1)
    assert class_score(confident, splits=5)[0] == pytest.approx(10.0, rel=1e-6)
    uniform = torch.full((50, 10), 0.1)
    assert class_score(uniform, splits=5)[0] == pytest.approx(1.0, rel=1e-6)
    # Two classes, each predicted with p = 0.9: KL = 0.9 ln(1.8) + 0.1 ln(0.2), by hand.
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]]).repeat(10, 1)
    expected = math.exp(0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5))
    assert class_score(p, splits=2)[0] == pytest.approx(expected, rel=1e-6)


def test_precision_recall_against_brute_force():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 5, generator=g)
    fake = torch.randn(200, 5, generator=g) * 0.5 + 1.0
    k = 3

    def brute(ref, queries):
        d_ref = torch.cdist(ref.double(), ref.double())
        radii = d_ref.sort(dim=1).values[:, k]
        d = torch.cdist(queries.double(), ref.double())
        return (d <= radii).any(dim=1).double().mean().item()

    precision, recall = precision_recall(real, fake, k=k)
    assert precision == pytest.approx(brute(real, fake))
    assert recall == pytest.approx(brute(fake, real))
    assert recall < precision  # a narrow model: realistic samples, poor coverage


def test_nearest_neighbours_against_cdist():
    g = torch.Generator().manual_seed(0)
    q, ref = torch.randn(50, 7, generator=g), torch.randn(80, 7, generator=g)
    d, i = nearest_neighbours(q, ref, chunk_size=16)
    full = torch.cdist(q.double(), ref.double())
    assert torch.equal(i, full.argmin(1))
    assert torch.allclose(d.double(), full.min(1).values, atol=1e-4)


def test_parzen_against_a_mixture_of_gaussians():
    g = torch.Generator().manual_seed(0)
    centres, x, sigma = torch.randn(30, 4, generator=g), torch.randn(10, 4, generator=g), 0.7
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(30)),
        torch.distributions.Independent(torch.distributions.Normal(centres, sigma), 1),
    )
    ours = parzen_log_likelihood(x, centres, sigma, chunk_size=3)
    assert torch.allclose(ours, mixture.log_prob(x).double(), atol=1e-5)


def test_parzen_sigma_selection_and_standard_error():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(500, 2, generator=g)
    validation = torch.randn(300, 2, generator=g)
    sigmas = np.logspace(-2, 1, 10)
    best, scores = select_parzen_sigma(validation, centres, sigmas)
    assert 0.1 < best < 1.0 and scores[0] < max(scores) and scores[-1] < max(scores)
    mean, se = mean_and_standard_error(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(10, 28, 28, dtype=torch.int32), "uint8 in \\[0, 255\\] or float"),
        (torch.zeros(10, 3, 28, 28), "shaped \\(N, 28, 28\\)"),
        (torch.zeros(10, 32, 32), "shaped \\(N, 28, 28\\)"),
        (torch.full((10, 28, 28), -1.0), "map generator outputs in \\[-1, 1\\]"),
        (torch.full((10, 28, 28), float("nan")), "NaN"),
    ],
)
def test_bad_images_get_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        check_images(bad)


def test_bad_features_get_clear_errors():
    good = torch.randn(300, 4)
    with pytest.raises(ValueError, match="shape \\(N, D\\)"):
        fid(good, torch.randn(300, 4, 1))
    with pytest.raises(ValueError, match="differ in dimension"):
        fid(good, torch.randn(300, 5))
    with pytest.raises(ValueError, match="more samples than feature dimensions"):
        gaussian_statistics(torch.randn(4, 4))
    nan = good.clone()
    nan[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf in 1 rows"):
        kid(good, nan)
    with pytest.raises(ValueError, match="float tensor"):
        precision_recall(good, torch.ones(300, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="class probabilities"):
        class_score(torch.randn(50, 10))
