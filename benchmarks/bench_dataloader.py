"""DCGAN training speed with two input pipelines, measured in one run.

(a) the book's pipeline: all of MNIST as one float tensor on the training device,
    minibatches made by indexing it with shuffled indices (``iterate_minibatches``);
(b) the standard pipeline: ``torchvision.datasets.MNIST`` with ``ToTensor`` and
    ``Normalize`` over PIL images, batched by a ``DataLoader`` and copied to the device.

Both train the same DCGAN of chapter 03 with the same step (one D update, one G update)
for a fixed number of steps; the script prints images per second for each pipeline and
their ratio, on the CPU and, when there is one, on the GPU. With ``--time-to-target`` it
also trains the DCGAN with the book's pipeline until the FID of its averaged generator
(10,000 samples against the 10,000 test images, as the chapters measure it) reaches a
target, three times the real-data floor unless told otherwise, and prints the wall-clock
seconds of training that took.

    python benchmarks/bench_dataloader.py
    python benchmarks/bench_dataloader.py --steps 300 --workers 0,2 --threads 2
    python benchmarks/bench_dataloader.py --devices cuda --time-to-target

torchvision reads MNIST from its raw files; the script writes them into a temporary
folder from the book's verified copy, so no download is needed.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from book_utils import set_seed
from book_utils.data import MNIST, load_mnist, minibatches, to_signed_unit
from book_utils.losses import GANTrainConfig, discriminator_loss, generator_loss_nonsaturating
from book_utils.metrics import FidProbe, load_classifier
from book_utils.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator

Batches = Iterator[torch.Tensor]


# --------------------------------------------------------------------------- the two pipelines
def book_batches(x: torch.Tensor, batch_size: int, seed: int) -> Batches:
    """Endless minibatches of x (already on the device), by indexing with shuffled indices
    (``minibatches``, as the chapters make them)."""
    for idx in minibatches(len(x), batch_size, seed, device=x.device):
        yield x[idx]  # (B, 1, 28, 28) in [-1, 1]


def write_torchvision_raw(root: Path, mnist: MNIST) -> None:
    """Write MNIST as torchvision's raw IDX files under root (what its MNIST class reads)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, images, labels in [
        ("train", mnist.x_train, mnist.y_train),
        ("t10k", mnist.x_test, mnist.y_test),
    ]:
        n = len(images)
        header = struct.pack(">IIII", 2051, n, 28, 28)  # magic number, count, rows, columns
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.numpy().tobytes())
        header = struct.pack(">II", 2049, n)
        labels_bytes = labels.to(torch.uint8).numpy().tobytes()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels_bytes)


def dataloader_batches(
    root: Path, batch_size: int, workers: int, device: torch.device, seed: int
) -> Batches:
    """Endless minibatches from torchvision's MNIST dataset through a standard DataLoader."""
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]  # PIL -> [-1, 1]
    )
    dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    while True:
        for x, _ in loader:
            yield x.to(device, non_blocking=True)  # (B, 1, 28, 28)


# --------------------------------------------------------------------------- the model and step
def make_dcgan(device: torch.device, seed: int) -> tuple[torch.nn.Module, Callable]:
    """A fresh DCGAN with chapter 03's networks, optimisers, running average of G's weights
    and training step (the chapter's ``train_step`` without the scalars it reports);
    returns (the averaged G, step)."""
    set_seed(seed)
    config, train = DCGANConfig(), GANTrainConfig()
    G, D = DCGANGenerator(config).to(device), DCGANDiscriminator(config).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=train.lr_g, betas=train.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=train.lr_d, betas=train.betas)
    G_ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)

    def step(x: torch.Tensor) -> None:
        x_fake = G(torch.randn(len(x), config.latent_dim, device=device))
        loss_d = discriminator_loss(D(x), D(x_fake.detach()))  # D step
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss_nonsaturating(D(x_fake))  # G step, against the updated D
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        G_ema.update_parameters(G)

    return G_ema.module, step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(
    batches: Batches, step: Callable, num_steps: int, batch_size: int, device: torch.device
) -> float:
    """Train num_steps steps (after 10 warm-up steps) and return images per second."""
    for x in itertools.islice(batches, 10):
        step(x)
    synchronize(device)
    start = time.perf_counter()
    for x in itertools.islice(batches, num_steps):
        step(x)
    synchronize(device)
    return num_steps * batch_size / (time.perf_counter() - start)


def pipeline_images_per_second(
    batches: Batches, num_steps: int, batch_size: int, device: torch.device
) -> float:
    """Images per second that the input pipeline alone delivers to the device (no training)."""
    for _ in itertools.islice(batches, 10):
        pass
    synchronize(device)
    start = time.perf_counter()
    for x in itertools.islice(batches, num_steps):
        x.add_(0)  # touch the batch on the device, so the copy really happens
    synchronize(device)
    return num_steps * batch_size / (time.perf_counter() - start)


# --------------------------------------------------------------------------- time to target
def seconds_to_target(
    batches: Batches,
    G: torch.nn.Module,
    step: Callable,
    probe: FidProbe,
    target: float,
    eval_every: int,
    max_steps: int,
    device: torch.device,
) -> tuple[float | None, int, float]:
    """Train until probe(G) <= target; (training seconds or None, steps, last FID).

    Only training time is counted; the FID evaluations are not.
    """
    seconds, steps, score = 0.0, 0, float("inf")
    while steps < max_steps:
        synchronize(device)
        start = time.perf_counter()
        for x in itertools.islice(batches, eval_every):
            step(x)
        synchronize(device)
        seconds += time.perf_counter() - start
        steps += eval_every
        score = probe(G)
        print(f"      step {steps:6d}  {seconds:8.1f} s  FID {score:7.1f}", flush=True)
        if score <= target:
            return seconds, steps, score
    return None, steps, score


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per pipeline")
    parser.add_argument("--batch-size", type=int, default=256, help="chapter 03 uses 256")
    parser.add_argument("--workers", default="0,2", help="DataLoader workers, comma-separated")
    parser.add_argument(
        "--devices", default="auto", help="auto (cpu and cuda if present), or a list"
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--time-to-target",
        action="store_true",
        help="also time training until the FID target is reached",
    )
    parser.add_argument(
        "--target-fid",
        type=float,
        default=0.0,
        help="FID target at --fid-samples samples (0: three times the real-data floor)",
    )
    parser.add_argument("--fid-samples", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--max-steps", type=int, default=50_000, help="chapter 03 trains 50,000")
    args = parser.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.devices == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = args.devices.split(",")
    workers = [int(w) for w in args.workers.split(",")]
    print(f"DCGAN (chapter 03), batch {args.batch_size}, {args.steps} timed steps per pipeline")
    print(
        f"CPU: {platform.processor() or platform.machine()}, torch threads: "
        f"{torch.get_num_threads()}; torch {torch.__version__}"
    )

    mnist = load_mnist()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_torchvision_raw(root, mnist)
        for name in devices:
            device = torch.device(name)
            label = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
            print(f"\n{name} ({label})")
            x = to_signed_unit(mnist.x_train).to(device)  # (60000, 1, 28, 28), on the device

            def pipelines(seed: int, device=device, x=x) -> dict[str, Batches]:
                out = {"on-device indexing (book)": book_batches(x, args.batch_size, seed)}
                for w in workers:
                    out[f"DataLoader, {w} workers"] = dataloader_batches(
                        root, args.batch_size, w, device, seed
                    )
                return out

            training, alone = {}, {}
            for pipeline, batches in pipelines(args.seed).items():
                _, step = make_dcgan(device, args.seed)
                training[pipeline] = images_per_second(
                    batches, step, args.steps, args.batch_size, device
                )
                alone[pipeline] = pipeline_images_per_second(
                    batches, 5 * args.steps, args.batch_size, device
                )
            book = "on-device indexing (book)"
            print("  images/s: training the DCGAN | the input pipeline alone")
            print(
                f"  {'pipeline':28s} {'training':>9s} {'book/this':>10s} | "
                f"{'pipeline':>9s} {'book/this':>10s}"
            )
            for pipeline in training:
                print(
                    f"  {pipeline:28s} {training[pipeline]:9.0f} "
                    f"{training[book] / training[pipeline]:9.2f}x | "
                    f"{alone[pipeline]:9.0f} {alone[book] / alone[pipeline]:9.2f}x"
                )

            if args.time_to_target:
                n = args.fid_samples
                classifier = load_classifier(device=device)
                probe = FidProbe(mnist.x_test[:n], mnist.x_train[:n], classifier)
                target = args.target_fid or 3 * probe.floor
                print(
                    f"  time to FID <= {target:.1f} ({args.fid_samples:,} samples; real-data "
                    f"floor {probe.floor:.1f}), evaluated every {args.eval_every} steps:"
                )
                for pipeline, batches in pipelines(args.seed).items():
                    if pipeline != book:
                        continue  # the input pipeline changes the speed, not the steps needed
                    print(f"    {pipeline}")
                    G, step = make_dcgan(device, args.seed)
                    seconds, steps, score = seconds_to_target(
                        batches, G, step, probe, target, args.eval_every, args.max_steps, device
                    )
                    if seconds is None:
                        print(f"    not reached in {steps} steps (FID {score:.1f})")
                    else:
                        print(f"    reached after {steps} steps: {seconds:.1f} s of training")


if __name__ == "__main__":
    main()
