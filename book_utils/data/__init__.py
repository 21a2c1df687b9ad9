"""Data sets of the book: real MNIST and the toy distributions of chapter 01."""

from book_utils.data.batches import minibatches
from book_utils.data.mnist import (
    MNIST,
    DataRootError,
    MnistCacheError,
    MnistError,
    MnistUnavailableError,
    binarize,
    default_data_root,
    from_signed_unit,
    iterate_minibatches,
    load_mnist,
    to_signed_unit,
    to_unit,
)
from book_utils.data.toy import (
    GaussianMixture1D,
    GaussianMixture2D,
    grid_of_gaussians,
    mode_coverage,
    ring_of_gaussians,
)

__all__ = [
    "MNIST",
    "DataRootError",
    "GaussianMixture1D",
    "GaussianMixture2D",
    "MnistCacheError",
    "MnistError",
    "MnistUnavailableError",
    "binarize",
    "default_data_root",
    "from_signed_unit",
    "grid_of_gaussians",
    "iterate_minibatches",
    "load_mnist",
    "minibatches",
    "mode_coverage",
    "ring_of_gaussians",
    "to_signed_unit",
    "to_unit",
]
