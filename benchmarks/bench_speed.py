"""Training speed of chapter 03's DCGAN with PyTorch's own speed-ups, measured in one run.

Each option trains the chapter's DCGAN with the chapter's step (``book_utils.gan_step``,
the book's input pipeline) from the same seed, and is compared with eager float32 at the
chapter's minibatch of 256:

* ``channels_last``: the networks and images in NHWC memory layout;
* ``bf16``: the forward passes under ``torch.autocast`` in bfloat16;
* ``compile``: G and D through ``torch.compile`` (default mode);
* ``compile-ro``: ``torch.compile(mode="reduce-overhead")``, which replays CUDA graphs
  (CUDA only);
* ``all``: channels_last, bf16 and the best compile mode together;
* ``batch-512``, ``batch-1024``: eager with larger minibatches (images/s, not steps/s,
  is what to compare).

For each it prints the seconds of the warm-up steps (compilation happens there), then
steps/s and images/s of the fastest of several rounds in which the options take turns
(other work on the machine can only slow a round down, and it comes and goes). With
``--fid-steps N`` (meant for a GPU) it also trains eager and the fastest options for N
steps each, scoring the averaged G every ``--fid-every`` steps (FID of 10,000 samples
against the 10,000 test images, in the book's classifier's features): FID at equal step
count, and the training seconds until the FID first falls to ``--target-fid``.

    python benchmarks/bench_speed.py                           # the device found
    python benchmarks/bench_speed.py --device cpu --warmup 3 --steps 3 --rounds 3
    python benchmarks/bench_speed.py --fid-steps 20000 --json speed_gpu.json   # a GPU

``--model`` picks the model; chapter 03's DCGAN is the one there is (see ``MODELS``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from book_utils import get_device, set_seed
from book_utils.data import load_mnist, minibatches, to_signed_unit
from book_utils.gan_step import gan_step
from book_utils.losses import GANTrainConfig
from book_utils.metrics import FidProbe, load_classifier
from book_utils.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from book_utils.runtime import describe_device


@dataclass(frozen=True)
class Variant:
    """One way to run the same training step."""

    name: str
    batch_size: int = 256  # chapter 03's minibatch
    channels_last: bool = False  # NHWC memory layout for networks and images
    bf16: bool = False  # forward passes under bfloat16 autocast
    compile_mode: str | None = None  # None: eager; else torch.compile(mode=...)


def variants(device: torch.device) -> list[Variant]:
    """The options measured on ``device`` (CUDA graphs need CUDA)."""
    best = "reduce-overhead" if device.type == "cuda" else "default"
    out = [
        Variant("eager"),
        Variant("channels_last", channels_last=True),
        Variant("bf16", bf16=True),
        Variant("compile", compile_mode="default"),
    ]
    if device.type == "cuda":
        out.append(Variant("compile-ro", compile_mode="reduce-overhead"))
    out.append(Variant("all", channels_last=True, bf16=True, compile_mode=best))
    out += [Variant(f"batch-{b}", batch_size=b) for b in (512, 1024)]
    return out


# ------------------------------------------------------------------------------- the models
# A model is a function (variant, device, seed, width) -> (step, sampler): ``step(t)``
# trains step t; ``sampler`` is the network whose samples FID scores. Chapter 06's U-Net
# goes here as a second entry, with its own step.
def make_dcgan(
    variant: Variant, device: torch.device, seed: int, width: int, x_train: torch.Tensor
) -> tuple[Callable[[int], dict], nn.Module]:
    """Chapter 03's DCGAN, optimisers, running average of G and step, run as ``variant``."""
    set_seed(seed)
    config = DCGANConfig(latent_dim=64, g_channels=width, d_channels=width)
    train = GANTrainConfig(batch_size=variant.batch_size, seed=seed)
    G, D = DCGANGenerator(config).to(device), DCGANDiscriminator(config).to(device)
    if variant.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=train.lr_g, betas=train.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=train.lr_d, betas=train.betas)
    G_ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    G_run, D_run = G, D
    if variant.compile_mode:
        G_run = torch.compile(G, mode=variant.compile_mode)
        D_run = torch.compile(D, mode=variant.compile_mode)
    precision = nullcontext
    if variant.bf16:
        precision = partial(torch.autocast, device.type, dtype=torch.bfloat16)
    batches = minibatches(len(x_train), train.batch_size, seed, device=device)

    def step(t: int) -> dict:
        if variant.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # a new step: graphs' outputs reused
        x = x_train[next(batches)]  # (B, 1, 28, 28)
        if variant.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        z = torch.randn(train.batch_size, config.latent_dim, device=device)
        return gan_step(x, z, G_run, D_run, opt_g, opt_d, G_ema=G_ema, precision=precision)

    return step, G_ema.module


MODELS = {"dcgan": make_dcgan}


# ------------------------------------------------------------------------------- measuring
def cpu_name() -> str:
    """The CPU's model name, e.g. "AMD EPYC 7B13" (Linux), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(steps: Callable[[], None], device: torch.device) -> float:
    """Seconds that ``steps()`` takes, the device's queued work included."""
    synchronize(device)
    start = time.perf_counter()
    steps()
    synchronize(device)
    return time.perf_counter() - start


def train(step: Callable[[int], dict], first: int, count: int) -> None:
    """Steps first, first + 1, ..., first + count - 1."""
    for t in range(first, first + count):
        step(t)


def measure_speeds(
    make: Callable, chosen: list[Variant], device, warmup: int, steps: int, rounds: int
) -> list[dict]:
    """Warm every option up, then time them in turn, ``rounds`` times ``steps`` steps each.
    Per option: the warm-up seconds, each round's steps/s, and the fastest round's steps/s
    and images/s (other work on the machine can only slow a round down). An option that
    fails (one this machine or build lacks) is reported and left out."""
    built = []
    for variant in chosen:
        try:
            step, _ = make(variant)
            warmup_seconds = timed(partial(train, step, 0, warmup), device)
        except Exception as err:
            print(f"{variant.name:14s} failed: {type(err).__name__}: {str(err).splitlines()[0]}")
            continue
        print(f"{variant.name:14s} warmed up in {warmup_seconds:.1f} s", flush=True)
        built.append({**asdict(variant), "warmup_seconds": warmup_seconds, "rounds": []})
        built[-1]["step"] = step
    for r in range(rounds):
        for result in list(built):
            try:
                seconds = timed(partial(train, result["step"], warmup + r * steps, steps), device)
            except Exception as err:
                print(f"{result['name']:14s} failed: {type(err).__name__}: {err}")
                built.remove(result)
                continue
            result["rounds"].append(steps / seconds)
    for result in built:
        del result["step"]
        result["steps_per_second"] = max(result["rounds"])  # other work only slows it
        result["images_per_second"] = result["steps_per_second"] * result["batch_size"]
    return built


def measure_quality(
    make: Callable, variant: Variant, device, probe: FidProbe, num_steps: int, every: int
) -> dict:
    """Train ``num_steps`` steps; FID of the averaged G every ``every`` steps, against the
    seconds of training so far (the scoring is not counted)."""
    step, sampler = make(variant)
    curve = {"step": [], "seconds": [], "fid": []}
    seconds = 0.0
    for first in range(0, num_steps, every):
        count = min(every, num_steps - first)
        seconds += timed(partial(train, step, first, count), device)
        curve["step"].append(first + count)
        curve["seconds"].append(seconds)
        curve["fid"].append(probe(sampler))
        print(
            f"  {variant.name:14s} step {first + count:7,d} {seconds:8.1f} s "
            f"FID {curve['fid'][-1]:6.1f}",
            flush=True,
        )
    return {**asdict(variant), **curve}


def seconds_to(curve: dict, target: float) -> float | None:
    """Training seconds at the first score at or below ``target`` (None: not reached)."""
    return next(
        (s for s, f in zip(curve["seconds"], curve["fid"], strict=True) if f <= target), None
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="dcgan")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: get_device())")
    p.add_argument("--variants", default="", help="comma-separated names (default: all)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps (compiling)")
    p.add_argument("--steps", type=int, default=50, help="timed steps per option and round")
    p.add_argument("--rounds", type=int, default=4, help="the options are timed in turn")
    p.add_argument("--width", type=int, default=128, help="channels of G and D, as ch. 03")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fid-steps", type=int, default=0, help="train this long for FIDs")
    p.add_argument("--fid-every", type=int, default=2_500)
    p.add_argument("--fid-variants", default="eager,compile-ro,all")
    p.add_argument("--target-fid", type=float, default=60.0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--warm-caches", action="store_true", help="reuse compiled kernels")
    args = p.parse_args(argv)
    # torch.compile keeps what it compiled in caches on disk, so that a second run of the
    # same code compiles faster. Without --warm-caches every option compiles from scratch,
    # as on a reader's first run.
    torch.compiler.config.force_disable_caches = not args.warm_caches
    device = get_device(args.device)
    chosen = variants(device)
    if args.variants:
        names = args.variants.split(",")
        unknown = set(names) - {v.name for v in chosen}
        if unknown:
            known = [v.name for v in chosen]
            p.error(f"unknown options {sorted(unknown)} on {device.type}; pick from {known}")
        chosen = [v for v in chosen if v.name in names]
    if min(args.warmup, args.steps, args.rounds) < 1:
        p.error("--warmup, --steps and --rounds must be at least 1")

    machine = describe_device(device)
    if device.type == "cpu":
        machine += f" ({cpu_name()})"
    print(f"{args.model}, width {args.width}, on {machine}; torch {torch.__version__}")
    print(
        f"{args.warmup} warm-up steps per option, then {args.rounds} rounds of "
        f"{args.steps} timed steps of each option in turn"
    )
    if hasattr(os, "getloadavg"):  # other processes on the machine slow the timings down
        print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)\n")
    mnist = load_mnist()
    x_train = to_signed_unit(mnist.x_train[:50_000]).to(device)  # (50000, 1, 28, 28)
    make = partial(
        MODELS[args.model], device=device, seed=args.seed, width=args.width, x_train=x_train
    )

    speed = measure_speeds(make, chosen, device, args.warmup, args.steps, args.rounds)
    eager = next((r for r in speed if r["name"] == "eager"), None)
    print(
        f"\n{'option':14s} {'batch':>6s} {'warm-up s':>10s} {'steps/s':>8s} {'images/s':>9s} "
        f"{'x eager':>8s}  steps/s in each round"
    )
    for r in speed:
        ratio = r["images_per_second"] / eager["images_per_second"] if eager else float("nan")
        print(
            f"{r['name']:14s} {r['batch_size']:6d} {r['warmup_seconds']:10.1f} "
            f"{r['steps_per_second']:8.2f} {r['images_per_second']:9.0f} {ratio:7.2f}x  "
            + " ".join(f"{x:.2f}" for x in r["rounds"])
        )

    quality = []
    if args.fid_steps and device.type != "cuda":
        count = len(args.fid_variants.split(","))
        cost = (
            f", about {count * args.fid_steps / eager['steps_per_second'] / 3600:.1f} h"
            if eager
            else ""
        )
        print(f"\nFID runs skipped off the GPU ({count} x {args.fid_steps:,} steps{cost})")
    elif args.fid_steps:
        classifier = load_classifier(device=device)
        probe = FidProbe(mnist.x_test, mnist.x_train[:10_000], classifier)
        print(f"\nFID every {args.fid_every:,} steps (floor {probe.floor:.1f})")
        by_name = {v.name: v for v in variants(device)}
        for name in args.fid_variants.split(","):
            q = measure_quality(make, by_name[name], device, probe, args.fid_steps, args.fid_every)
            quality.append(q)
        to_target = f"seconds to FID {args.target_fid:g}"
        print(f"\n{'option':14s} {'FID at end':>10s} {'seconds':>8s} {to_target:>20s}")
        for q in quality:
            reached = seconds_to(q, args.target_fid)
            reached = "not reached" if reached is None else f"{reached:.1f}"
            print(f"{q['name']:14s} {q['fid'][-1]:10.1f} {q['seconds'][-1]:8.1f} {reached:>20s}")

    results = {
        "date": time.strftime("%Y-%m-%d"),
        "load_average_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "model": args.model,
        "width": args.width,
        "machine": machine,
        "torch": torch.__version__,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "rounds": args.rounds,
        "compile_caches": "warm" if args.warm_caches else "disabled",
        "speed": speed,
        "quality": quality,
        "target_fid": args.target_fid,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
