"""Device, seed, precision and run mode: the few switches every chapter shares.

The run mode is read from the environment variable ``BOOK_MODE``:

* ``full`` (the default) trains with the real budget, or loads the finished checkpoint;
* ``smoke`` runs the same code with a tiny budget, for tests and CI.

A chapter never branches on the mode itself; it asks :func:`budget` for a number.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import torch

MODE_ENV = "BOOK_MODE"
MODES = ("full", "smoke")

T = TypeVar("T")


def get_mode() -> str:
    """Return the run mode, ``"full"`` or ``"smoke"``, from ``$BOOK_MODE``."""
    mode = os.environ.get(MODE_ENV, "full").strip().lower() or "full"
    if mode not in MODES:
        raise ValueError(
            f"{MODE_ENV}={mode!r} is not a run mode; set it to one of {MODES} "
            f"(or unset it for 'full')."
        )
    return mode


def budget(full: T, smoke: T) -> T:
    """Pick a budget (steps, epochs, sample counts...) for the current run mode.

    >>> budget(full=10_000, smoke=20)  # doctest: +SKIP
    """
    return smoke if get_mode() == "smoke" else full


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: CUDA if present, then Apple's MPS, else the CPU.

    ``prefer`` (e.g. ``"cpu"``) overrides the choice; so does ``$BOOK_DEVICE``.
    """
    choice = prefer or os.environ.get("BOOK_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a CPU generator seeded alike.

    The same seed gives the same numbers on the CPU. GPU kernels may still differ
    in the last bits from run to run.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def autocast(device: torch.device | str, enabled: bool = True) -> Iterator[None]:
    """Mixed precision (bfloat16) on a CUDA device; a no-op on the CPU and elsewhere."""
    device = torch.device(device)
    if enabled and device.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield
    else:
        yield
