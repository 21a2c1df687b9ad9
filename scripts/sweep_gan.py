"""Short runs of the MNIST GANs, FID against CPU-minutes: one curve per setting, to
choose the network and the recipe of chapters 07 and 08 before the long training, and to
compare chapter 03's DCGAN recipe with chapter 07's on this machine for the same time.

    OMP_NUM_THREADS=1 nice python scripts/sweep_gan.py sngan_w32 --minutes 30
    python scripts/sweep_gan.py --plot   # every finished curve, in one figure

A setting is a network (chapter 03's DCGAN, or chapter 07's SN-GAN at some width) and a
recipe: the loss (chapter 03's ``gan_step`` or chapter 07's ``hinge_gan_step``, with R1 as
an option), learning rates, Adam's betas, batch size and D updates per G update. Every
``--eval-every`` CPU-minutes of training, the FID of the averaged G (its decay warmed
up, ``ema_with_warmup``, so that a short run's average is not its random start) and of
the G being trained are measured on ``--num-eval`` samples against as many test images.
CPU time is the process's own (``time.process_time``), counting training steps only; run
one thread per process. The curves go to ``benchmarks/results/sweeps/gan/<setting>.json``
(appendix A plots them), the latest G and averaged G to ``runs/sweeps/gan/<setting>.pt``;
``--plot`` draws ``curves.png`` beside the curves.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sweep_flow import plot, run_curve  # noqa: E402

from book_utils import set_seed  # noqa: E402
from book_utils.data import (  # noqa: E402
    from_signed_unit,
    load_mnist,
    minibatches,
    to_signed_unit,
)
from book_utils.gan_step import gan_step, hinge_gan_step  # noqa: E402
from book_utils.metrics import FidProbe, extract, load_classifier  # noqa: E402
from book_utils.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator  # noqa: E402
from book_utils.models.sngan import SNGANConfig, SNGANDiscriminator, SNGANGenerator  # noqa: E402
from book_utils.training import ema_with_warmup  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "sweeps" / "gan"  # the curves, kept with the book
WEIGHTS = ROOT / "runs" / "sweeps" / "gan"  # each run's latest G and averaged G


@dataclasses.dataclass(frozen=True)
class Recipe:
    network: str = "sngan"  # "sngan" (chapter 07) or "dcgan" (chapter 03)
    width: int = 64  # SN-GAN's width (DCGAN: chapter 03's 128 channels)
    spectral_norm: bool = True  # SN-GAN's D
    pooling: str = "sum"  # SN-GAN's D: "sum" or "mean" over the 7 x 7 positions
    loss: str = "hinge"  # "hinge" (hinge_gan_step) or "logistic" (chapter 03's gan_step)
    r1_gamma: float = 0.0  # hinge only: gamma of R1 on the real images
    n_dis: int = 1  # D updates per G update (hinge only)
    batch_size: int = 128
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.9)
    ema_decay: float = 0.999
    num_classes: int = 0  # 10: chapter 08's conditional G and projection D (hinge only)
    seed: int = 0


CH03 = {"network": "dcgan", "loss": "logistic", "batch_size": 256, "lr_g": 2e-4}
CH03 |= {"lr_d": 2e-4, "betas": (0.5, 0.999)}
STANDIN = {"width": 32, "lr_g": 2e-4, "batch_size": 64}  # chapter 07's CPU recipe
SETTINGS: dict[str, dict] = {
    "dcgan_ch03": CH03,  # chapter 03's DCGAN and recipe
    "sngan_w64": {},  # chapter 07's SN-GAN and recipe
    "sngan_w32": {"width": 32},
    "sngan_w32_ndis2": {"width": 32, "n_dis": 2},
    "sngan_w32_lr2e-4": {"width": 32, "lr_g": 2e-4, "lr_d": 2e-4},
    "sngan_w32_b05": {"width": 32, "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)},
    "sngan_w64_b05": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999)},
    "r1_w32": {"width": 32, "spectral_norm": False, "r1_gamma": 0.1},
    "sngan_w32_r1": {"width": 32, "r1_gamma": 0.1},
    "sngan_w32_mean": {"width": 32, "pooling": "mean"},
    # the recipe of chapter 07's first CPU models (width 16), at width 32
    "sngan_w32_standin": STANDIN,
    "sngan_w64_standin": {**STANDIN, "width": 64},
    # the fair comparison of chapter 07: chapter 03's recipe and chapter 07's, an hour each
    "dcgan_ch03_long": CH03,
    "sngan_w32_standin_long": STANDIN,
    # chapter 08: the class-conditional GAN with chapter 07's recipe, and with its own
    "cgan_w32_standin": {**STANDIN, "num_classes": 10},
    "cgan_w32_b05": {**STANDIN, "num_classes": 10, "lr_d": 2e-4, "betas": (0.5, 0.999)},
}


def networks(recipe: Recipe) -> tuple[torch.nn.Module, torch.nn.Module, int]:
    """G, D and the size of z."""
    if recipe.network == "dcgan":
        config = DCGANConfig()
        return DCGANGenerator(config), DCGANDiscriminator(config), config.latent_dim
    config = SNGANConfig(
        z_dim=64,
        width=recipe.width,
        spectral_norm=recipe.spectral_norm,
        pooling=recipe.pooling,
        num_classes=recipe.num_classes,
    )
    return SNGANGenerator(config), SNGANDiscriminator(config), config.z_dim


def train(name: str, minutes: float, eval_every: float, num_eval: int) -> None:
    recipe = Recipe(**SETTINGS[name])
    mnist = load_mnist()
    x_train = to_signed_unit(mnist.x_train[:50_000])  # (50000, 1, 28, 28)
    y_train = mnist.y_train[:50_000]  # (50000,), for the conditional settings
    classifier = load_classifier()
    probe = FidProbe(mnist.x_test[:num_eval], mnist.x_train[:num_eval], classifier)
    set_seed(recipe.seed)
    G, D, z_dim = networks(recipe)
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr_g, betas=recipe.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr_d, betas=recipe.betas)
    G_ema = AveragedModel(G, multi_avg_fn=ema_with_warmup(recipe.ema_decay), use_buffers=True)
    batches = minibatches(len(x_train), recipe.batch_size, recipe.seed)
    curve = {"setting": name, "recipe": dataclasses.asdict(recipe), "num_eval": num_eval}
    curve |= {"floor": probe.floor, "threads": torch.get_num_threads()}
    curve |= {"parameters": [sum(p.numel() for p in net.parameters()) for net in (G, D)]}

    def labels(i: torch.Tensor) -> torch.Tensor | None:
        """The minibatch's digits for a conditional setting, else None."""
        return y_train[i] if recipe.num_classes else None

    def step() -> float:
        G.train()
        D.train()
        for _ in range(recipe.n_dis - 1):  # the extra D updates, each on a fresh minibatch
            i = next(batches)
            x, z = x_train[i], torch.randn(recipe.batch_size, z_dim)
            hinge_gan_step(
                x, z, G, D, opt_g, opt_d, r1_gamma=recipe.r1_gamma, update_g=False, y=labels(i)
            )
        i = next(batches)
        x = x_train[i]
        z = torch.randn(len(x), z_dim)
        if recipe.loss == "logistic":
            logs = gan_step(x, z, G, D, opt_g, opt_d)
        else:
            logs = hinge_gan_step(x, z, G, D, opt_g, opt_d, r1_gamma=recipe.r1_gamma, y=labels(i))
        G_ema.update_parameters(G)
        return logs["loss_d"].item()

    def evaluate() -> dict[str, float]:
        fid, fid_raw = probe(G_ema.module.eval()), probe(G.eval())
        WEIGHTS.mkdir(parents=True, exist_ok=True)
        weights = {"G": G.state_dict(), "G_ema": G_ema.module.state_dict()}
        torch.save(weights, WEIGHTS / f"{name}.pt")
        figures = {"FID": fid, "raw G's FID": fid_raw}
        if recipe.num_classes:  # the share of samples the classifier reads as asked
            asked = torch.arange(num_eval) % recipe.num_classes
            samples = G_ema.module.sample(num_eval, torch.Generator().manual_seed(0), asked)
            _, probs = extract(from_signed_unit(samples), classifier)
            figures["accuracy"] = (probs.argmax(1) == asked).float().mean().item()
        return figures

    # points: (step, CPU-minutes, wall-minutes, mean loss_d, fid, raw G's fid[, accuracy])
    run_curve(name, curve, OUT, minutes, eval_every, step, evaluate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", nargs="?", choices=sorted(SETTINGS))
    parser.add_argument("--minutes", type=float, default=30.0, help="CPU-minutes of training")
    parser.add_argument("--eval-every", type=float, default=5.0, help="CPU-minutes")
    parser.add_argument("--num-eval", type=int, default=2000, help="samples per FID")
    parser.add_argument("--plot", action="store_true", help="draw the finished curves")
    args = parser.parse_args()
    if args.plot:
        plot(OUT)
        return
    if args.setting is None:
        parser.error("name a setting, or --plot")
    train(args.setting, args.minutes, args.eval_every, args.num_eval)


if __name__ == "__main__":
    main()
