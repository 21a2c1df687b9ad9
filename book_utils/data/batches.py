"""Minibatches by index.

MNIST is small enough to sit on the training device as one tensor, so a minibatch is
``x[idx]`` for a tensor of shuffled indices ``idx``; no ``DataLoader`` is needed.
:func:`minibatches` is the endless stream a training loop draws from, which a resumed run
replays exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch


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
    batch has ``batch_size`` examples. The same generator state gives the same batches.
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


def minibatches(
    n: int, batch_size: int, seed: int, start: int = 0, device: torch.device | str = "cpu"
) -> Iterator[torch.Tensor]:
    """Indices of minibatches into a data set of ``n`` examples, from step ``start`` on.

    Epoch after epoch, each a fresh shuffle (the last incomplete minibatch is dropped).
    Epoch e's shuffle depends only on (seed, e), so a run resumed at step ``start`` sees
    the same minibatches as one that never stopped::

        batches = minibatches(len(x_train), 64, seed=0, start=run.step, device=device)
        x = x_train[next(batches)]  # (64, 1, 28, 28)
    """
    steps_per_epoch = n // batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"need batch_size <= n, got batch_size={batch_size}, n={n}")
    epoch, skip = divmod(start, steps_per_epoch)
    while True:
        shuffle = torch.Generator().manual_seed(seed * 100_003 + epoch)
        epoch_batches = iterate_minibatches(n, batch_size, generator=shuffle, device=device)
        yield from itertools.islice(epoch_batches, skip, None)
        epoch, skip = epoch + 1, 0
