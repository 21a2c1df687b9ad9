"""An endless stream of shuffled minibatches that a resumed run replays exactly."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch

from book_utils.data.mnist import iterate_minibatches


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
