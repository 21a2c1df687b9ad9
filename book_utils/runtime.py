"""Device, seed, precision and run mode: the few switches every chapter shares.

Three environment variables steer a chapter from outside, without editing it:

* ``BOOK_MODE``: ``full`` (the default) trains with the real budget, or loads the finished
  model; ``smoke`` runs the same code with a tiny budget, for tests and CI. A chapter
  never branches on the mode itself; it asks :func:`budget` for a number;
* ``BOOK_RETRAIN=1``: train even where a finished model exists, or ``BOOK_RETRAIN=cgan``:
  train only the models named (:func:`retrain_requested`);
* ``BOOK_OVERRIDES``: a JSON object of hyperparameters that replace those of the chapter's
  hyperparameter cell, e.g. ``{"batch_size": 128, "g_channels": 256}`` (:func:`override`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import re
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import torch

MODE_ENV = "BOOK_MODE"
RETRAIN_ENV = "BOOK_RETRAIN"
OVERRIDES_ENV = "BOOK_OVERRIDES"
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


def retrain_names() -> set[str] | None:
    """The models named in ``$BOOK_RETRAIN`` (``cgan,realnvp``), or None if it names none."""
    value = os.environ.get(RETRAIN_ENV, "").strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*", value):
        return None
    names = set(value.split(","))
    return None if names & {"true", "yes", "false", "no"} else names


def retrain_requested(retrain: bool | None = None, name: str | None = None) -> bool:
    """Whether to train even where a finished model exists: ``retrain`` if given, else
    ``$BOOK_RETRAIN`` (``1``/``true``/``yes``, or ``0``/``false``/``no``/unset).

    ``$BOOK_RETRAIN`` may instead name the models to train again, ``cgan`` or
    ``cgan,realnvp``: then the model ``name`` is retrained if it is named, whatever
    ``retrain`` says, and the others load; without a ``name`` the answer is True (some
    model of the chapter may be new, so its quoted figures need not hold)."""
    value = os.environ.get(RETRAIN_ENV, "").strip().lower()
    names = retrain_names()
    if names is not None:
        return name in names if name is not None else True
    if retrain is not None:
        return bool(retrain)
    if value not in ("1", "true", "yes", "", "0", "false", "no"):
        raise ValueError(
            f"{RETRAIN_ENV}={value!r}: set it to 1 (retrain) or 0 (load), to the names of the "
            "models to retrain (e.g. cgan,realnvp), or unset it"
        )
    return value in ("1", "true", "yes")


def override(*configs: T) -> T | tuple[T, ...]:
    """The configs (frozen dataclasses) with the fields named in ``$BOOK_OVERRIDES`` replaced.

    Every key must be a field of exactly one of the configs, so a typo is an error rather
    than a setting silently ignored. Returns one config, or a tuple of them.
    """
    wanted = json.loads(os.environ.get(OVERRIDES_ENV, "").strip() or "{}")
    out = []
    for config in configs:
        names = {f.name for f in dataclasses.fields(config)}
        changes = {key: value for key, value in wanted.items() if key in names}
        out.append(dataclasses.replace(config, **changes))
    for key in wanted:
        owners = [type(c).__name__ for c in configs if key in dataclasses.asdict(c)]
        if len(owners) != 1:
            raise ValueError(
                f"{OVERRIDES_ENV} sets {key!r}, a field of {owners or 'none'} of the configs "
                f"{[type(c).__name__ for c in configs]}; name a field of exactly one of them"
            )
    return out[0] if len(out) == 1 else tuple(out)


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


def describe_device(device: torch.device | str) -> str:
    """A short name for a machine, e.g. "NVIDIA H200" or "CPU, 2 threads"."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads" if device.type == "cpu" else device.type


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
