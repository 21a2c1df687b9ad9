"""Data sets of the book: real MNIST and the toy distributions of chapter 01.

``mnist.py`` loads MNIST (from the sources in ``mnist_sources.py``, torchvision's files in
the IDX format of ``idx.py``), ``batches.py`` shuffles it into minibatches, ``pixels.py``
converts its pixels between bytes, [0, 1] and [-1, 1], and ``toy.py`` holds the toys.
"""

from book_utils.data.batches import iterate_minibatches, minibatches
from book_utils.data.idx import read_idx, write_idx
from book_utils.data.mnist import (
    MNIST,
    DataRootError,
    MnistError,
    MnistUnavailableError,
    default_data_root,
    load_mnist,
)
from book_utils.data.pixels import (
    binarize,
    from_signed_unit,
    from_unit,
    signed_to_unit,
    to_signed_unit,
    to_unit,
    unit_to_signed,
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
    "MnistError",
    "MnistUnavailableError",
    "binarize",
    "default_data_root",
    "from_signed_unit",
    "from_unit",
    "grid_of_gaussians",
    "iterate_minibatches",
    "load_mnist",
    "minibatches",
    "mode_coverage",
    "read_idx",
    "ring_of_gaussians",
    "signed_to_unit",
    "to_signed_unit",
    "to_unit",
    "unit_to_signed",
    "write_idx",
]
