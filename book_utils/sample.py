"""Draw samples from any trained generative model of the book.

    python -m book_utils.sample NAME [--n N] [--out FILE] [--seed S] [--device D] [--steps K]
                                     [--label K] [--guidance W]

NAME is the short name of a model folder in ``book_utils/checkpoints/`` (``dcgan``) or the
path of any model folder. :func:`~book_utils.checkpoint.from_pretrained` rebuilds the model
from the class its ``config.json`` names (the registry ``book_utils.models.MODEL_CLASSES``),
so every model with a ``sample(n, generator)`` method works without code of its own here.
FILE ending in ``.npy`` gets uint8 images shaped (N, 28, 28), the format that
``python -m book_utils.metrics`` scores; FILE ending in ``.png`` gets one grid of them.
Models that sample in steps (chapter 06's ``ddpm`` and ``flow``) take ``--steps K``, the
number of network evaluations per image (default: the model's ``config.sample_steps``).
The conditional models of chapter 08 (``cvae``, ``cgan``, ``flow_cfg``) take ``--label K``,
the digit to draw (default: the digits in turn, or at random for ``cgan``); so does a flow
network trained with the digit's label and label dropout (chapter 06's ``flow``), whose
default is the null label: the unconditional model. The guided flows take ``--guidance W``,
the classifier-free guidance scale (default: the model's ``config.guidance``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from book_utils.checkpoint import CHECKPOINT_DIR, CheckpointError, from_pretrained, saved_models
from book_utils.data import from_unit
from book_utils.models import MODEL_CLASSES
from book_utils.models.unet import FlowUNet, GuidedFlowUNet

# The generative models that chapter 05 scores side by side, in the order of the book.
BOOK_MODELS = {
    "mlp_gan": "MLP GAN (chapter 02)",
    "dcgan": "DCGAN (chapter 03)",
    "vae": "VAE (chapter 04)",
    "sngan": "SN-GAN (chapter 07)",
}


def available_models() -> list[str]:
    """The short names of the saved models that can draw samples."""
    names = []
    for name in saved_models():
        saved = json.loads((CHECKPOINT_DIR / name / "config.json").read_text())
        model_class, _ = MODEL_CLASSES.get(saved["class"], (None, None))
        if hasattr(model_class, "sample"):
            names.append(name)
    return names


def draw_samples(
    name: str | Path,
    n: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 1000,
    progress: bool = False,
    steps: int | None = None,
    label: int | None = None,
    guidance: float | None = None,
) -> torch.Tensor:
    """n samples of a saved model as uint8 images (n, 28, 28), on the CPU.

    ``steps``: network evaluations per image, for the models that sample in steps
    (their ``sample`` takes ``steps``); None uses the model's default. ``label``: the
    digit to draw, for the conditional models (their ``sample`` takes ``labels``, or they
    are flow networks with labels). ``guidance``: the guidance scale, for the guided flows.

    The noise comes from one CPU generator seeded with ``seed``, batch after batch: the
    same name, n, seed and batch_size give the same images (exactly, on the CPU).
    """
    if int(n) != n or n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be positive whole numbers, got {n}, {batch_size}")
    model = from_pretrained(name, device)
    if not hasattr(model, "sample"):
        raise CheckpointError(f"{name} holds a {type(model).__name__}, which draws no samples")
    conditional_flow = type(model) is FlowUNet and model.config.num_classes > 0
    if conditional_flow and (label is not None or guidance is not None):
        model = GuidedFlowUNet.from_flow(model)  # the same weights, sampled with labels
    options = {}
    if guidance is not None:
        if "guidance" not in inspect.signature(model.sample).parameters:
            raise ValueError(f"{name} is not a guided flow; it takes no guidance")
        options["guidance"] = float(guidance)
    if steps is not None:  # the model's sample checks the number itself
        if "steps" not in inspect.signature(model.sample).parameters:
            raise ValueError(f"{name} draws its samples in one pass; it takes no steps")
        options["steps"] = steps
    if label is not None:
        if "labels" not in inspect.signature(model.sample).parameters:
            raise ValueError(f"{name} is not a conditional model; it takes no label")
        if int(label) != label or not 0 <= label < model.config.num_classes:
            raise ValueError(f"--label must be a digit 0..9 for {name}, got {label}")
    low, high = model.pixel_range
    generator = torch.Generator().manual_seed(seed)
    images = torch.empty(int(n), 28, 28, dtype=torch.uint8)
    with tqdm(total=int(n), desc=f"sampling {name}", unit="img", disable=not progress) as bar:
        for start in range(0, int(n), batch_size):
            size = min(batch_size, int(n) - start)
            if label is not None:
                options["labels"] = torch.full((size,), int(label))  # (size,)
            x = model.sample(size, generator=generator, **options)  # (size, 1, 28, 28)
            x = x.float().cpu()
            images[start : start + size] = from_unit((x - low) / (high - low))  # (size, 28, 28)
            bar.update(size)
    return images


def save_png_grid(images: torch.Tensor, path: str | Path) -> Path:
    """Save uint8 images (N, 28, 28) as one square-ish PNG grid, white lines between them."""
    from PIL import Image
    from torchvision.utils import make_grid

    nrow = math.ceil(math.sqrt(len(images)))
    grid = make_grid(images.unsqueeze(1), nrow=nrow, padding=2, pad_value=255)  # (3, H, W)
    Image.fromarray(grid[0].numpy()).save(path)  # (H, W) uint8: grayscale
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m book_utils.sample",
        description="Draw samples from a trained model of the book; write them as a .npy of "
        "uint8 images (N, 28, 28) or as a PNG grid.",
        epilog="models in book_utils/checkpoints/: " + ", ".join(available_models()),
    )
    parser.add_argument("model", metavar="NAME", help="short name or folder of the model")
    parser.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="a .npy or .png (NAME.png)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument(
        "--steps",
        type=int,
        metavar="K",
        help="network evaluations per image, for ddpm and flow (default: the model's own)",
    )
    parser.add_argument(
        "--label",
        type=int,
        metavar="K",
        help="the digit to draw, for the conditional models (cvae, cgan, flow_cfg, and a "
        "flow trained with labels)",
    )
    parser.add_argument(
        "--guidance",
        type=float,
        metavar="W",
        help="classifier-free guidance scale, for the guided flows (default: the model's own)",
    )
    args = parser.parse_args(argv)
    out = args.out or Path(f"{Path(args.model).name}.png")
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if out.suffix.lower() not in (".npy", ".png"):
        parser.error(f"--out must end in .npy or .png, got {out}")
    try:
        images = draw_samples(
            args.model,
            args.n,
            args.seed,
            args.device,
            progress=True,
            steps=args.steps,
            label=args.label,
            guidance=args.guidance,
        )
    except (CheckpointError, ValueError) as err:
        parser.error(str(err))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        np.save(out, images.numpy())
    else:
        save_png_grid(images, out)
    what = f"{args.n} samples of {args.model}"
    what += f", digit {args.label}" if args.label is not None else ""
    what += f", guidance {args.guidance:g}" if args.guidance is not None else ""
    print(f"wrote {what} (seed {args.seed}) to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
