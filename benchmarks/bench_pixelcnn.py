"""Speed of chapter 10's gated PixelCNN on this machine: a training step with the stacks'
kernels stored cropped (the book's ``CroppedConv2d``) against the same network with full
k x k masked kernels (``MaskedConv2d``), and cached sampling in images per second.

    OMP_NUM_THREADS=1 python benchmarks/bench_pixelcnn.py \
        --json benchmarks/results/bench_pixelcnn_cpu.json

Both networks hold the same weights (the masked one's kernels are the cropped ones padded
with zeros), so they compute the same function: the check at the start says so. The
fastest of ``--rounds`` rounds is reported (other work on the machine can only slow a
round down); the two take turns within each round.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from book_utils.models.pixelcnn import (
    GatedLayer,
    MaskedConv2d,
    PixelCNN,
    PixelCNNConfig,
    horizontal_mask,
    vertical_mask,
)


def masked_copy(model: PixelCNN) -> PixelCNN:
    """The same network with full k x k masked kernels in place of the cropped ones."""
    k = model.config.kernel_size
    masked = PixelCNN(model.config)
    masked.load_state_dict(model.state_dict())
    layer: GatedLayer
    for layer, source in zip(masked.layers, model.layers, strict=True):
        for name, mask in [
            ("vertical", vertical_mask(k, not layer.first)),
            ("horizontal", horizontal_mask(k, not layer.first)),
        ]:
            cropped = getattr(source, name)
            conv = MaskedConv2d(cropped.in_channels, cropped.out_channels, mask)
            rows, cols = cropped.weight.shape[2:]
            with torch.no_grad():
                conv.weight.zero_()
                conv.weight[:, :, :rows, :cols] = cropped.weight
                conv.bias.copy_(cropped.bias)
            setattr(layer, name, conv)
    return masked


def step_seconds(model: PixelCNN, x: torch.Tensor, steps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    start = time.perf_counter()
    for _ in range(steps):
        loss = -model.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--kernel", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100, help="images drawn, cached")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    config = PixelCNNConfig(args.channels, args.layers, args.kernel)
    cropped = PixelCNN(config)
    masked = masked_copy(cropped)
    x = (torch.rand(args.batch, 1, 28, 28) < 0.2).float()
    gap = (cropped(x) - masked(x)).abs().max().item()
    print(f"{config}, {torch.get_num_threads()} thread(s); same logits: max gap {gap:.1e}")
    assert gap < 1e-4
    best = {"cropped": float("inf"), "masked": float("inf")}
    for _ in range(args.rounds):
        for name, model in [("cropped", cropped), ("masked", masked)]:
            best[name] = min(best[name], step_seconds(model, x, args.steps))
    for name, seconds in best.items():
        rate = args.batch / seconds
        print(f"{name:8s}: {seconds:.3f} s per step of {args.batch} ({rate:.0f} images/s)")
    print(f"cropped kernels: {best['masked'] / best['cropped']:.2f}x faster per training step")
    start = time.perf_counter()
    cropped.sample(args.samples, torch.Generator().manual_seed(0))
    seconds = time.perf_counter() - start
    print(f"cached sampling: {args.samples / seconds:.1f} images/s ({args.samples} images)")
    if args.json:
        figures = {
            "config": dataclasses.asdict(config),
            "batch": args.batch,
            "threads": torch.get_num_threads(),
        }
        figures |= {"seconds_per_step": best, "sampling_images_per_s": args.samples / seconds}
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
