"""The IDX format of the original MNIST files: a short header, then the bytes.

Header: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions d,
then the d sizes as big-endian uint32. The values follow, row by row. torchvision keeps
MNIST in this format, as ``<root>/MNIST/raw/train-images-idx3-ubyte`` and three others.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped if the name ends in .gz)."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    header_size = 4 + 4 * data[3]
    if len(data) < header_size:
        raise ValueError(f"{path} is truncated inside its header")
    shape = struct.unpack(f">{data[3]}I", data[4:header_size])
    if len(data) != header_size + math.prod(shape):
        raise ValueError(f"{path} has {len(data)} bytes, expected {header_size + math.prod(shape)}")
    return np.frombuffer(bytearray(data), np.uint8, offset=header_size).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array of values 0..255 as an IDX file of unsigned bytes (gzipped if .gz)."""
    path, array = Path(path), np.asarray(array)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)
