"""Short runs of chapter 06's flow-matching network, FID against CPU-minutes: one curve per
setting, to choose the network and the recipe before the long training.

    OMP_NUM_THREADS=1 nice python scripts/sweep_flow.py stem14 --minutes 25
    python scripts/sweep_flow.py --plot   # every finished curve, in one figure

Each setting (``SETTINGS`` below) changes a few fields of the network (``UNetConfig``) or
of the recipe (``Recipe``) from the common ones. The network is trained as chapter 06
trains it (flow matching, Adam, an average of the weights), with labels dropped to the
null label a tenth of the time, as for the shared network of chapters 06 and 08. Every
``--eval-every`` CPU-minutes of training, the averaged network's FID is measured on
``--num-eval`` samples drawn with the null label (unconditional) and ``--eval-steps`` Euler
steps, against as many test images. CPU time is the process's own (``time.process_time``),
counting the training steps only; run one thread per process so that it means one core.
The curves go to ``benchmarks/results/sweeps/flow/<setting>.json`` (appendix A plots
them), the latest averaged weights to ``runs/sweeps/flow/<setting>.pt``; ``--plot``
draws the curves into ``curves.png`` beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from book_utils import set_seed  # noqa: E402
from book_utils.data import load_mnist, minibatches, to_signed_unit  # noqa: E402
from book_utils.diffusion import (  # noqa: E402
    NoiseSchedule,
    ddim_sample,
    ddpm_loss,
    euler_sample,
    flow_matching_loss,
)
from book_utils.metrics import FidProbe, load_classifier  # noqa: E402
from book_utils.models.unet import GuidedFlowUNet, UNetConfig  # noqa: E402
from book_utils.training import ema_with_warmup  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "sweeps" / "flow"  # the curves, kept with the book
WEIGHTS = ROOT / "runs" / "sweeps" / "flow"  # each run's latest averaged weights


@dataclasses.dataclass(frozen=True)
class Recipe:
    batch_size: int = 128
    lr: float = 2e-4
    warmup_steps: int = 0  # the learning rate rises linearly from 0 over these steps
    max_grad_norm: float = 0.0  # clip the gradient's norm to this (0: no clipping)
    ema_decay: float = 0.9995  # the average's decay, after its warm-up
    ema_warmup: bool = True  # decay min(ema_decay, (1 + n) / (10 + n)) at update n
    time_sampling: str = "uniform"  # or "logit_normal"
    objective: str = "flow"  # or "ddpm": noise prediction, cosine schedule, DDIM samples
    min_snr: float = 0.0  # ddpm: min-SNR-gamma weighting (0: L_simple)
    label_dropout: float = 0.1
    seed: int = 0


COMMON = {"channels": 64, "time_dim": 128, "dropout": 0.1, "num_classes": 10, "num_blocks": 1}
STEM = {"stem": 2, "channel_mult": (1, 2), "attention": True}
FAST = {"lr": 5e-4, "warmup_steps": 200, "max_grad_norm": 1.0}
SETTINGS: dict[str, tuple[dict, dict]] = {  # (network fields, recipe fields)
    "unet28": ({"stem": 1, "channel_mult": (1, 2, 2)}, {}),
    "stem14": (STEM, {}),
    "stem14_noattn": ({**STEM, "attention": False}, {}),
    "stem14_logitnormal": (STEM, {"time_sampling": "logit_normal"}),
    "stem14_w96": ({**STEM, "channels": 96}, {}),
    "stem14_fast": (STEM, FAST),
    "stem14_fast_noclip": (STEM, {"lr": 5e-4}),  # stem14_fast without warm-up, clipping
    "stem14_lr1e-3": (STEM, {"lr": 1e-3, "warmup_steps": 200, "max_grad_norm": 1.0}),
    "stem14_b2_fast": ({**STEM, "num_blocks": 2}, FAST),
    "stem14_w96_fast": ({**STEM, "channels": 96}, FAST),
    "stem14_noemawarmup": (STEM, {"ema_warmup": False}),
    "ddpm_stem14": (STEM, {"objective": "ddpm"}),
    "ddpm_stem14_minsnr5": (STEM, {"objective": "ddpm", "min_snr": 5.0}),
}


class Unconditional:
    """What FidProbe samples: the network with the null label, by Euler's method (flow)
    or DDIM (ddpm)."""

    def __init__(self, model: GuidedFlowUNet, steps: int, objective: str) -> None:
        self.model, self.steps, self.objective = model, steps, objective

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.objective == "ddpm":
            schedule = NoiseSchedule.named("cosine", 1000)
            return ddim_sample(self.model, schedule, n, self.steps, generator)
        return euler_sample(self.model, n, self.steps, generator)  # y = None: null label


def train(name: str, minutes: float, eval_every: float, num_eval: int, eval_steps: int):
    network, recipe_fields = SETTINGS[name]
    config = UNetConfig(**{**COMMON, **network})
    recipe = Recipe(**recipe_fields)
    torch.manual_seed(0)
    mnist = load_mnist()
    x_train = to_signed_unit(mnist.x_train[:50_000])  # (50000, 1, 28, 28)
    y_train = mnist.y_train[:50_000]
    probe = FidProbe(mnist.x_test[:num_eval], mnist.x_train[:num_eval], load_classifier())
    set_seed(recipe.seed)
    model = GuidedFlowUNet(config)
    schedule = NoiseSchedule.named("cosine", 1000)

    if recipe.ema_warmup:  # decay min(ema_decay, (1 + n) / (10 + n)) at update n
        average = ema_with_warmup(recipe.ema_decay)
    else:
        average = get_ema_multi_avg_fn(recipe.ema_decay)
    ema = AveragedModel(model, multi_avg_fn=average)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    warmup = max(recipe.warmup_steps, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
    batches = minibatches(len(x_train), recipe.batch_size, recipe.seed)
    curve = {"setting": name, "network": dataclasses.asdict(config)}
    curve |= {"recipe": dataclasses.asdict(recipe), "num_eval": num_eval}
    curve |= {"eval_steps": eval_steps, "floor": probe.floor, "threads": torch.get_num_threads()}
    curve |= {"parameters": sum(p.numel() for p in model.parameters())}

    def step() -> float:
        model.train()
        i = next(batches)
        if recipe.objective == "ddpm":  # unconditional: no labels
            loss = ddpm_loss(model, schedule, x_train[i], recipe.min_snr)
        else:
            loss = flow_matching_loss(
                model, x_train[i], y_train[i], recipe.label_dropout, recipe.time_sampling
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        opt.step()
        sched.step()
        ema.update_parameters(model)
        return loss.item()

    def evaluate() -> dict[str, float]:
        fid = probe(Unconditional(ema.module.eval(), eval_steps, recipe.objective))
        WEIGHTS.mkdir(parents=True, exist_ok=True)
        torch.save(ema.module.state_dict(), WEIGHTS / f"{name}.pt")  # the latest average
        return {"FID": fid}

    run_curve(name, curve, OUT, minutes, eval_every, step, evaluate)  # points: (..., fid)


def run_curve(
    name: str,
    curve: dict,
    out: Path,
    minutes: float,
    eval_every: float,
    step: Callable[[], float],
    evaluate: Callable[[], dict[str, float]],
) -> None:
    """The sweeps' loop: call ``step()`` (one training step; it returns its loss) until
    ``minutes`` CPU-minutes of steps have passed. Every ``eval_every`` CPU-minutes, and at
    the end, append (steps, CPU-minutes, wall-minutes, mean loss since the last point,
    *evaluate().values()) to ``curve["points"]``, print it and write the curve to
    ``out/<name>.json``. CPU time is the process's own, counting the steps only."""
    curve["points"] = []
    cpu = wall = 0.0
    steps, losses, next_eval = 0, [], eval_every
    while cpu < minutes:
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        losses.append(step())
        steps += 1
        cpu += (time.process_time() - start_cpu) / 60
        wall += (time.perf_counter() - start_wall) / 60
        if cpu >= next_eval or cpu >= minutes:
            next_eval += eval_every
            values = evaluate()
            point = (steps, cpu, wall, sum(losses) / len(losses), *values.values())
            curve["points"].append(point)
            losses = []
            shown = ", ".join(f"{key} {value:.3f}" for key, value in values.items())
            print(f"{name}: step {steps}, {cpu:.1f} CPU-min, loss {point[3]:.4f}, {shown}")
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.json").write_text(json.dumps(curve, indent=1) + "\n")


def plot(
    folder: Path = OUT,
    prefix: str = "",
    ylabel: str = "FID (as recorded: samples, steps)",
    log: bool = True,
) -> None:
    """Every curve in ``folder`` whose name starts with ``prefix`` in one figure (its
    score against CPU-minutes), ``<prefix>_curves.png`` (or ``curves.png``)."""
    import matplotlib

    matplotlib.use("Agg")

    from book_utils.plotting import load_sweep, plot_sweep

    ax = plot_sweep(load_sweep(folder, prefix), ylabel, log=log)
    name = f"{prefix}_curves.png" if prefix else "curves.png"
    ax.figure.savefig(folder / name, dpi=100, bbox_inches="tight")
    print(f"wrote {folder / name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", nargs="?", choices=sorted(SETTINGS))
    parser.add_argument("--minutes", type=float, default=25.0, help="CPU-minutes of training")
    parser.add_argument("--eval-every", type=float, default=5.0, help="CPU-minutes")
    parser.add_argument("--num-eval", type=int, default=1000, help="samples per FID")
    parser.add_argument("--eval-steps", type=int, default=10, help="Euler steps per sample")
    parser.add_argument("--plot", action="store_true", help="draw the finished curves")
    args = parser.parse_args()
    if args.plot:
        plot()
        return
    if args.setting is None:
        parser.error("name a setting, or --plot")
    train(args.setting, args.minutes, args.eval_every, args.num_eval, args.eval_steps)


if __name__ == "__main__":
    main()
