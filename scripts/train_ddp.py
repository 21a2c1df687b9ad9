"""Train chapter 03's DCGAN on N processes with data parallelism (DistributedDataParallel).

    torchrun --standalone --nproc_per_node=N scripts/train_ddp.py            # N GPUs
    torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --cpu      # 2 CPU processes

Every process holds a replica of G and D and trains on its own shard of each global
minibatch (``--batch-size`` images, split evenly: the global minibatch, the learning rates
and hence the training are the same for any N). ``DistributedDataParallel`` averages the
gradients over the processes during the backward pass, so all replicas take the same
optimiser step and stay identical. Batch norm normalises over the global minibatch
(``SyncBatchNorm2d``) unless ``--local-batch-norm``. Only rank 0 writes: the saved progress
every ``--save-every`` steps, the log, the sample grids and FIDs of the averaged G, and at
the end the model folders ``<out>/dcgan_ddp`` (averaged G) and ``dcgan_ddp_raw`` (last G),
in the format of the book's models (``from_pretrained`` loads them).

Started again with the same settings, a run resumes from its last save, with any number of
processes: the minibatches and the noise of a step depend only on the seed and the step.
``--stop-at STEP`` saves at STEP and exits, to go on later. The appendix "Training faster"
explains each piece.
"""

from __future__ import annotations

import argparse
import math
import os
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from book_utils import set_seed
from book_utils.data import default_data_root, load_mnist, minibatches, to_signed_unit
from book_utils.distributed import (
    RankZeroRun,
    average_across_processes,
    shard,
    with_synced_batch_norm,
)
from book_utils.gan_step import gan_step
from book_utils.losses import GANTrainConfig
from book_utils.metrics import FidProbe, load_classifier
from book_utils.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from book_utils.models.layers import snapshot_images
from book_utils.runtime import describe_device

EMA_DECAY = 0.999  # as in chapter 03


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    chapter = DCGANConfig(), GANTrainConfig(num_steps=50_000, batch_size=256)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=chapter[1].num_steps, help="training steps")
    p.add_argument("--batch-size", type=int, default=chapter[1].batch_size, help="global")
    p.add_argument("--lr", type=float, default=chapter[1].lr_g, help="of G and of D")
    p.add_argument("--seed", type=int, default=chapter[1].seed)
    p.add_argument("--latent-dim", type=int, default=chapter[0].latent_dim)
    p.add_argument("--g-channels", type=int, default=chapter[0].g_channels)
    p.add_argument("--d-channels", type=int, default=chapter[0].d_channels)
    p.add_argument("--train-images", type=int, default=50_000, help="the first n of MNIST")
    p.add_argument("--local-batch-norm", action="store_true", help="per-shard statistics")
    p.add_argument("--snapshots", type=int, default=16, help="FID and samples; 0: none")
    p.add_argument("--num-eval", type=int, default=10_000, help="samples for each FID")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--stop-at", type=int, default=None, help="save at this step and exit")
    p.add_argument("--out", type=Path, default=default_data_root() / "ddp", help="folder")
    p.add_argument("--name", default="dcgan_ddp")
    p.add_argument("--cpu", action="store_true", help="CPU processes (gloo), even with GPUs")
    args = p.parse_args(argv)
    if args.steps < 1 or args.save_every < 1 or args.snapshots < 0:
        p.error("--steps and --save-every must be positive, --snapshots at least 0")
    if args.stop_at is not None and not 0 < args.stop_at <= args.steps:
        p.error(f"--stop-at must be between 1 and --steps ({args.steps})")
    return args


def start_processes(cpu: bool) -> torch.device:
    """Join the process group that torchrun set up (its RANK, WORLD_SIZE, MASTER_ADDR...):
    NCCL on GPUs, one GPU per process; gloo on CPUs. Returns this process's device."""
    if "RANK" not in os.environ:
        raise SystemExit(
            "Start this script with torchrun, e.g. "
            "torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --cpu"
        )
    if cpu or not torch.cuda.is_available():
        dist.init_process_group("gloo")
        return torch.device("cpu")
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(device)
    dist.init_process_group("nccl", device_id=device)
    return device


def noise(step: int, seed: int, batch_size: int, latent_dim: int, device) -> torch.Tensor:
    """The global minibatch's noise z (B, latent_dim) of ``step``: the same on every
    process and in every run, whatever the number of processes, like the minibatches."""
    generator = torch.Generator(device).manual_seed(seed * 1_000_003 + step)
    return torch.randn(batch_size, latent_dim, generator=generator, device=device)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = start_processes(args.cpu)
    try:
        train(args, device)
    finally:
        dist.destroy_process_group()


def train(args: argparse.Namespace, device: torch.device) -> None:
    rank, world_size = dist.get_rank(), dist.get_world_size()

    def say(*text: object) -> None:  # only rank 0 prints
        if rank == 0:
            print(*text, flush=True)

    config = DCGANConfig(args.latent_dim, args.g_channels, args.d_channels)
    train_config = GANTrainConfig(
        args.steps, args.batch_size, args.lr, args.lr, (0.5, 0.999), args.seed
    )
    shard(torch.empty(args.batch_size), rank, world_size)  # a clear error if B % N != 0

    # The same seed on every process gives the same initial weights (DDP would also copy
    # rank 0's weights to the others when it wraps the networks).
    set_seed(args.seed)
    G = DCGANGenerator(config).to(device)
    D = DCGANDiscriminator(config).to(device)
    if not args.local_batch_norm:  # batch statistics of the global minibatch
        G, D = with_synced_batch_norm(G), with_synced_batch_norm(D)
    betas = train_config.betas
    opt_g = torch.optim.Adam(G.parameters(), lr=train_config.lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=train_config.lr_d, betas=betas)
    parts = {"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d}
    G_ema = None
    if rank == 0:  # only rank 0 samples and saves, so only it keeps the average of G
        average = get_ema_multi_avg_fn(EMA_DECAY)
        G_ema = AveragedModel(G, multi_avg_fn=average, use_buffers=True)
        parts["G_ema"] = G_ema
    hyperparameters = {
        "model": config,
        "train": train_config,
        "ema_decay": EMA_DECAY,
        "train_images": args.train_images,
        "synced_batch_norm": not args.local_batch_norm,
    }  # not the number of processes: a run resumes with any number
    run = RankZeroRun(args.name, hyperparameters, root=args.out, **parts)
    machine = f"{world_size} x {describe_device(device)}"
    if run.step == 0:
        run.record.machine = machine
    elif not run.record.machine.endswith(machine):
        run.record.machine += f", then {machine}"
    say(run, f"({world_size} process(es), {args.batch_size // world_size} images each)")
    if run.done:
        return

    # Wrapping: the backward passes through G_ddp and D_ddp average the gradients of G and
    # of D over the processes. Before each forward pass DDP also copies rank 0's buffers
    # (batch norm's running statistics) to the others: with per-shard batch statistics
    # they would drift apart; synced, they are the same everywhere anyway.
    G_ddp, D_ddp = DDP(G), DDP(D)

    mnist = load_mnist()
    x_train = to_signed_unit(mnist.x_train[: args.train_images]).to(device)  # (n, 1, 28, 28)
    fid_probe = None
    if rank == 0 and args.snapshots:
        classifier = load_classifier(device=device)
        num_eval = args.num_eval
        fid_probe = FidProbe(mnist.x_test[:num_eval], mnist.x_train[:num_eval], classifier)
        z_fixed = torch.randn(64, config.latent_dim, generator=torch.Generator().manual_seed(1234))
        samples_of_averaged_g = partial(snapshot_images, G_ema.module, z_fixed)
    snapshot_every = math.ceil(args.steps / args.snapshots) if args.snapshots else 0

    stop = args.stop_at or args.steps
    batches = minibatches(len(x_train), args.batch_size, args.seed, run.step, device=device)
    for step in range(run.step, stop):
        if fid_probe and step % snapshot_every == 0:  # the other ranks wait meanwhile
            run.snapshot(step, samples_of_averaged_g, fid=partial(fid_probe, G_ema.module))
        x = x_train[shard(next(batches), rank, world_size)]  # (B / N, 1, 28, 28)
        z_global = noise(step, args.seed, args.batch_size, config.latent_dim, device)
        z = shard(z_global, rank, world_size)  # (B / N, latent_dim)
        logs = gan_step(x, z, G_ddp, D_ddp, opt_g, opt_d, D_for_g=D, G_ema=G_ema)
        run.log(step, average_across_processes(logs))  # the global minibatch's scalars
        if (step + 1) % args.save_every == 0 or step + 1 == stop:
            run.save(step + 1)
    say(f"parameters identical on the {world_size} process(es): {replicas_agree(G, D)}")
    if stop < args.steps:
        say(f"stopped at step {stop:,}; run the same command again to go on")
    else:
        if fid_probe:
            run.snapshot(args.steps, samples_of_averaged_g, fid=partial(fid_probe, G_ema.module))
        if rank == 0:
            folder = run.finish(G_ema.module, **{f"{args.name}_raw": G})
            record = run.record
            say(
                f"{record.steps:,} steps in {record.seconds / 60:.1f} min on {record.machine} "
                f"({record.steps / record.seconds:.1f} steps/s); saved {folder}"
            )


def replicas_agree(*nets: torch.nn.Module) -> bool:
    """Whether every process holds exactly the parameters of rank 0 (a check that DDP kept
    the replicas in step); one broadcast and one all-reduce."""
    flat = torch.cat([p.detach().flatten() for net in nets for p in net.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    differs = torch.tensor([float(not torch.equal(flat, reference))], device=flat.device)
    dist.all_reduce(differs)
    return differs.item() == 0


if __name__ == "__main__":
    main()
