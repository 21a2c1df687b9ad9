"""The pieces that data-parallel training adds to a training loop (``scripts/train_ddp.py``,
run by ``torchrun``; the appendix on faster training explains them).

* :func:`shard`: a process's share of a global minibatch;
* :class:`SyncBatchNorm2d` and :func:`with_synced_batch_norm`: batch norm over the global
  minibatch, as if one process saw all of it;
* :func:`average_across_processes`: the mean of logged scalars over the processes;
* :class:`RankZeroRun`: a :class:`~book_utils.training.Run` that only rank 0 writes.

Without an initialised process group (one process, no ``torchrun``) each of them does what
the single-process code does.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from book_utils.training import Run


def rank_and_world_size() -> tuple[int, int]:
    """(this process's rank, the number of processes); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s consecutive share of a global minibatch: rows
    ``[rank * B / N, (rank + 1) * B / N)`` for B rows and N processes."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not one of the {world_size} processes")
    if len(batch) % world_size:
        raise ValueError(
            f"a global minibatch of {len(batch)} does not split evenly over {world_size} "
            "processes; pick a batch size that is a multiple of the number of processes"
        )
    size = len(batch) // world_size
    return batch[rank * size : (rank + 1) * size]


class SumOverProcesses(torch.autograd.Function):
    """y = the sum of x over all processes (an all-reduce). Every process's loss depends on y,
    so in the backward pass the gradient with respect to y is summed over them likewise."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor) -> torch.Tensor:
        grad_x = grad_y.clone()
        dist.all_reduce(grad_x)
        return grad_x


class SyncBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose statistics are those of the global minibatch, summed over processes.

    What ``torch.nn.SyncBatchNorm`` does with fused GPU kernels, written out so that it also
    runs on the CPU (gloo). Each process sums its shard's values and squares per channel;
    one all-reduce adds the sums of all processes; mean and variance follow. The all-reduce
    is differentiable: in the backward pass it adds the gradients of all processes.
    In eval mode, or alone, it is ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, world_size = rank_and_world_size()
        if not self.training or world_size == 1 or not self.track_running_stats:
            return super().forward(x)
        c, x32 = x.shape[1], x.float()  # sums in float32, also under autocast
        count = torch.full((1,), x.numel() / c, device=x.device)
        local = torch.cat([x32.sum((0, 2, 3)), (x32 * x32).sum((0, 2, 3)), count])  # (2C+1,)
        total = SumOverProcesses.apply(local)  # the same sums on every process
        n = total[-1]
        mean = total[:c] / n  # (C,)
        var = total[c : 2 * c] / n - mean * mean  # (C,), biased: what batch norm divides by
        with torch.no_grad():  # running statistics, as nn.BatchNorm2d keeps them
            self.num_batches_tracked += 1
            momentum = self.momentum
            if momentum is None:  # a cumulative average, as nn.BatchNorm2d keeps it then
                momentum = 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean, momentum)
            self.running_var.lerp_(var * n / (n - 1), momentum)  # unbiased
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = -mean * scale + (self.bias if self.affine else 0.0)
        return x * scale[:, None, None] + shift[:, None, None]  # (B, C, H, W)


def with_synced_batch_norm(net: nn.Module) -> nn.Module:
    """``net`` with every ``nn.BatchNorm2d`` replaced by a :class:`SyncBatchNorm2d` holding
    the same parameters and statistics (in place; returns ``net``)."""
    for name, child in net.named_children():
        if type(child) is nn.BatchNorm2d:
            synced = SyncBatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                device=child.weight.device,
            )
            synced.load_state_dict(child.state_dict())
            setattr(net, name, synced)
        else:
            with_synced_batch_norm(child)
    return net


def average_across_processes(values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean of each scalar over all processes (one all-reduce), so that what rank 0
    logs is the global minibatch's loss, not its own shard's."""
    _, world_size = rank_and_world_size()
    if world_size == 1:
        return dict(values)
    stacked = torch.stack([torch.as_tensor(v).detach().float() for v in values.values()])
    dist.all_reduce(stacked)  # sum over the processes
    return dict(zip(values, stacked / world_size, strict=True))


class RankZeroRun(Run):
    """A :class:`~book_utils.training.Run` made on every process of a job, written by rank 0
    only: rank 0 restores or starts the saved run first; then the other processes restore
    the same saved state (read only). ``log``, ``snapshot``, ``save`` and ``finish`` do
    nothing on the other ranks. The processes must share a file system (one machine).
    A signal stops the job as it would stop any script (torchrun passes it to every
    process); the job resumes from its last save."""

    stops_on_signal = False  # one rank alone cannot stop the others at the same step

    def __init__(self, *args, **kwargs):  # the arguments of Run
        rank, world_size = rank_and_world_size()
        self.writes = rank == 0
        if not self.writes:
            dist.barrier()  # wait until rank 0 has restored the saved run, or saved step 0
        quiet = (
            contextlib.nullcontext() if self.writes else contextlib.redirect_stdout(io.StringIO())
        )
        with quiet:  # only rank 0 says that it resumes
            super().__init__(*args, **kwargs)
        if self.writes and world_size > 1:
            dist.barrier()

    def log(self, step: int, values: Mapping[str, torch.Tensor | float]) -> None:
        if self.writes:
            super().log(step, values)

    def snapshot(self, step, images, **scores) -> None:
        if self.writes:
            super().snapshot(step, images, **scores)

    def save(self, step: int) -> None:
        if self.writes:
            super().save(step)
        else:
            self.step = step

    def finish(self, model: nn.Module, **more: nn.Module) -> Path:
        return super().finish(model, **more) if self.writes else self.folder
