"""The nearest-neighbour memorisation check flags copies of training images, not new digits."""

import pytest
import torch

from book_utils.data import load_mnist
from book_utils.metrics.memorisation import (
    memorisation_check,
    nearest_training_images,
    to_pixels,
)

NUM_TRAIN = 3000  # a slice of the training set keeps the test fast


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def train(mnist):
    return mnist.x_train[:NUM_TRAIN]


@pytest.fixture(scope="module")
def baseline(mnist, train):
    distances, _ = nearest_training_images(mnist.x_test[:500], train)
    return distances


def test_distances_match_brute_force(mnist, train):
    queries = mnist.x_test[:50]
    distances, indices = nearest_training_images(queries, train, chunk_size=16)
    brute = torch.cdist(to_pixels(queries).double(), to_pixels(train).double())  # (50, NUM_TRAIN)
    assert torch.allclose(distances.double(), brute.min(1).values, atol=1e-4)
    assert torch.equal(indices, brute.argmin(1))


def test_pixels_are_in_unit_range_for_uint8_and_float(mnist):
    x = mnist.x_train[:10]
    assert torch.equal(to_pixels(x), to_pixels(x.unsqueeze(1)))
    assert torch.allclose(to_pixels(x), to_pixels(x.float() / 255), atol=1e-6)
    assert to_pixels(x).shape == (10, 784) and to_pixels(x).max() <= 1


def test_copies_of_training_images_are_flagged(train, baseline):
    picks = torch.arange(0, NUM_TRAIN, 30)  # 100 training images, returned unchanged
    report = memorisation_check(train[picks], train, baseline=baseline)
    assert report.near_copy_fraction == 1.0
    assert report.median_ratio < 1e-3
    assert torch.equal(report.neighbours, picks)  # each copy's neighbour is its original
    assert len(report.near_copies) == len(picks)


def test_fresh_test_images_are_not_flagged(mnist, train):
    report = memorisation_check(mnist.x_test[500:1000], train, mnist.x_test[:500])
    assert report.quantile == 0.01
    assert report.near_copy_fraction < 0.05  # about 1%, the quantile, by construction
    assert 0.85 < report.median_ratio < 1.15
    assert "near copies" in report.summary()


def test_slightly_noisy_copies_are_still_flagged_and_closest_come_first(mnist, train, baseline):
    g = torch.Generator().manual_seed(0)
    copies = train[:50].float() / 255
    noisy = (copies + 0.02 * torch.randn(copies.shape, generator=g)).clamp(0, 1)
    samples = torch.cat([mnist.x_test[1000:1050].float() / 255, noisy])  # new, then copies
    report = memorisation_check(samples, train, baseline=baseline)
    assert set(report.near_copies.tolist()) >= set(range(50, 100))
    assert (report.closest(50) >= 50).all()
    assert report.distances[report.closest(3)].diff().ge(0).all()


def test_the_baseline_can_be_reused(mnist, train):
    first = memorisation_check(mnist.x_test[500:600], train, mnist.x_test[:500])
    again = memorisation_check(mnist.x_test[500:600], train, baseline=first.baseline)
    assert torch.equal(first.distances, again.distances) and first.threshold == again.threshold


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one of held_out"),
        ({"held_out": "both", "baseline": torch.ones(200)}, "exactly one of held_out"),
        ({"baseline": torch.ones(50)}, "images are too few"),
        ({"baseline": torch.ones(200, 2)}, "1-D tensor"),
        ({"baseline": torch.ones(200), "quantile": 0.0}, "quantile must lie"),
    ],
)
def test_bad_arguments_get_clear_errors(train, kwargs, message):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("held_out"), str):
        kwargs["held_out"] = train[:200]
    with pytest.raises(ValueError, match=message):
        memorisation_check(train[:10], train, **kwargs)


@pytest.mark.parametrize(
    "samples, message",
    [
        (torch.zeros(5, 32, 32, dtype=torch.uint8), r"shaped \(N, 28, 28\)"),
        (torch.full((5, 28, 28), 2.0), r"must lie in \[0, 1\]"),
        (torch.full((5, 784), 200.0), r"float pixels in \[0, 1\]"),
        (torch.zeros(5, 28, 28, dtype=torch.int64), "uint8"),
    ],
)
def test_bad_images_get_clear_errors(train, baseline, samples, message):
    with pytest.raises(ValueError, match=message):
        memorisation_check(samples, train, baseline=baseline)
