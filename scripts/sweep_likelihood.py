"""Short runs of chapter 10's likelihood models, test NLL against CPU-minutes: one curve
per setting, to choose the PixelCNN's and the flow's network and recipe before the long
training.

    OMP_NUM_THREADS=1 nice python scripts/sweep_likelihood.py pixelcnn_c64_l10 --minutes 30
    python scripts/sweep_likelihood.py --plot   # every finished curve, one figure per model

A setting names the model ("pixelcnn" or "realnvp"), a few fields of its config that
differ from the common ones, the learning rate and the minibatch size. Each is trained
as chapter 10 trains it (Adam, gradients clipped at norm 100, minibatches from the 60,000
training images; the PixelCNN on a fresh binarisation of each minibatch, the flow on a
fresh dequantisation) but at a constant learning rate, since a short run has no end to decay
towards. Every ``--eval-every`` CPU-minutes the test NLL is measured on ``--num-eval``
test images: nats per image on chapter 04's binarised test images for the PixelCNN (exact),
bits per dimension on dequantised test images for the flow (the bound, one seeded draw of
u per image). CPU time is the process's own (``time.process_time``), counting training
steps only; run one thread per process. The curves go to
``benchmarks/results/sweeps/likelihood/<setting>.json`` (appendix A plots them).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sweep_flow import plot, run_curve  # noqa: E402

from book_utils import set_seed  # noqa: E402
from book_utils.data import binarize, load_mnist, minibatches, to_unit  # noqa: E402
from book_utils.models.pixelcnn import PixelCNN, PixelCNNConfig  # noqa: E402
from book_utils.models.realnvp import RealNVP, RealNVPConfig, bits_per_dim  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "sweeps" / "likelihood"  # kept with the book

# The fields each setting starts from (chapter 10's first settings, sized for a GPU)
PIXELCNN = {"channels": 64, "num_layers": 10, "kernel_size": 3}
REALNVP = {"hidden": 64, "num_blocks": 4, "num_scales": 3}
H32 = {"hidden": 32, "num_blocks": 2}  # chapter 10's CPU flow, before its options
VARDEQ = {"dequantisation": "variational"}
# name: (model, config fields changed from the common ones, learning rate, batch size)
SETTINGS: dict[str, tuple[str, dict, float, int]] = {
    "pixelcnn_c64_l10": ("pixelcnn", {}, 1e-3, 128),
    "pixelcnn_c64_l10_k5": ("pixelcnn", {"kernel_size": 5}, 1e-3, 128),
    "pixelcnn_c32_l10_k5": ("pixelcnn", {"channels": 32, "kernel_size": 5}, 1e-3, 128),
    "pixelcnn_c64_l15_k5": ("pixelcnn", {"num_layers": 15, "kernel_size": 5}, 1e-3, 128),
    "pixelcnn_c64_l10_k5_lr3e-3": ("pixelcnn", {"kernel_size": 5}, 3e-3, 128),
    # Smaller minibatches: more updates per CPU-second (the stand-in's batch of 32)
    "pixelcnn_c16_l4_k5_b32": (
        "pixelcnn",
        {"channels": 16, "num_layers": 4, "kernel_size": 5},
        2e-3,
        32,
    ),
    "pixelcnn_c32_l10_k5_b32": ("pixelcnn", {"channels": 32, "kernel_size": 5}, 1e-3, 32),
    "pixelcnn_c64_l10_k5_b32": ("pixelcnn", {"kernel_size": 5}, 1e-3, 32),
    "pixelcnn_c32_l6_k5_b32": (
        "pixelcnn",
        {"channels": 32, "num_layers": 6, "kernel_size": 5},
        1e-3,
        32,
    ),
    "realnvp_h64_b4": ("realnvp", {}, 1e-3, 128),
    "realnvp_h64_b2": ("realnvp", {"num_blocks": 2}, 1e-3, 128),
    "realnvp_h64_b2_actnorm": ("realnvp", {"num_blocks": 2, "actnorm": True}, 1e-3, 128),
    "realnvp_h64_b2_early": ("realnvp", {"num_blocks": 2, "full_res_couplings": 2}, 1e-3, 128),
    "realnvp_h64_b2_vardeq": (
        "realnvp",
        {"num_blocks": 2, "dequantisation": "variational"},
        1e-3,
        128,
    ),
    "realnvp_h16_b1_b32": ("realnvp", {"hidden": 16, "num_blocks": 1}, 1e-3, 32),
    "realnvp_h32_b2_b32": ("realnvp", H32, 1e-3, 32),
    "realnvp_h64_b2_b32": ("realnvp", {"num_blocks": 2}, 1e-3, 32),
    "realnvp_h32_b2_b32_vardeq": ("realnvp", {**H32, **VARDEQ}, 1e-3, 32),
    "realnvp_h32_b2_b32_actnorm": ("realnvp", {**H32, "actnorm": True}, 1e-3, 32),
    "realnvp_h32_b2_b32_vardeq_actnorm": ("realnvp", {**H32, **VARDEQ, "actnorm": True}, 1e-3, 32),
    "realnvp_h32_b2_b32_early": ("realnvp", {**H32, "full_res_couplings": 2}, 1e-3, 32),
}


def build(name: str) -> torch.nn.Module:
    model, fields, _, _ = SETTINGS[name]
    if model == "pixelcnn":
        return PixelCNN(PixelCNNConfig(**{**PIXELCNN, **fields}))
    return RealNVP(RealNVPConfig(**{**REALNVP, **fields}))


def loss_fn(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Chapter 10's losses: nats per image (PixelCNN), bits per dimension (flow)."""
    if isinstance(model, PixelCNN):
        return -model.log_prob(binarize(to_unit(x))).mean()
    return bits_per_dim(model.log_likelihood_bound(x)).mean()


@torch.no_grad()
def test_nll(model: torch.nn.Module, x_test: torch.Tensor) -> float:
    """Mean test NLL: nats per image (PixelCNN, x_test binary), or bits per dimension
    (flow, x_test bytes, one seeded draw of u per image)."""
    model.eval()
    if isinstance(model, PixelCNN):
        return torch.cat([-model.log_prob(x) for x in x_test.split(500)]).mean().item()
    generator = torch.Generator().manual_seed(0)
    bound = [model.log_likelihood_bound(x, generator) for x in x_test.split(500)]
    return bits_per_dim(torch.cat(bound)).mean().item()


def train(name: str, minutes: float, eval_every: float, num_eval: int) -> None:
    kind, _, lr, batch_size = SETTINGS[name]
    mnist = load_mnist()
    x_bytes = mnist.x_train.unsqueeze(1)  # (60000, 1, 28, 28) uint8
    x_test = mnist.x_test[:num_eval].unsqueeze(1)  # (num_eval, 1, 28, 28) uint8
    if kind == "pixelcnn":  # chapter 04's binary test images
        binary = binarize(to_unit(mnist.x_test), generator=torch.Generator().manual_seed(2015))
        x_test = binary[:num_eval]
    set_seed(0)
    model = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches = minibatches(len(x_bytes), batch_size, seed=0)
    unit = "nats" if kind == "pixelcnn" else "bits/dim"
    curve = {"setting": name, "config": dataclasses.asdict(model.config), "lr": lr}
    curve |= {"batch_size": batch_size}
    curve |= {"unit": unit, "num_eval": num_eval, "threads": torch.get_num_threads()}
    curve |= {"parameters": sum(p.numel() for p in model.parameters())}
    steps = 0

    def step() -> float:
        nonlocal steps
        model.train()
        loss = loss_fn(model, x_bytes[next(batches)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        opt.step()
        steps += 1
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"{name}: the loss is {loss.item()} at step {steps}")
        return loss.item()

    # points: (step, CPU-minutes, wall-minutes, mean training loss, test NLL)
    run_curve(
        name, curve, OUT, minutes, eval_every, step, lambda: {"test": test_nll(model, x_test)}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", nargs="?", choices=sorted(SETTINGS))
    parser.add_argument("--minutes", type=float, default=30.0, help="CPU-minutes of training")
    parser.add_argument("--eval-every", type=float, default=5.0, help="CPU-minutes")
    parser.add_argument("--num-eval", type=int, default=1000, help="test images")
    parser.add_argument("--plot", action="store_true", help="draw the finished curves")
    args = parser.parse_args()
    if args.plot:
        for kind, label in [("pixelcnn", "test NLL (nats)"), ("realnvp", "bits per dimension")]:
            plot(OUT, prefix=kind, ylabel=label, log=False)
        return
    if args.setting is None:
        parser.error("name a setting, or --plot")
    train(args.setting, args.minutes, args.eval_every, args.num_eval)


if __name__ == "__main__":
    main()
