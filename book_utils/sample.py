"""Draw samples from the book's trained generative models.

    python -m book_utils.sample MODEL --n N --out FILE [--seed S] [--device D]

MODEL is a short name (``python -m book_utils.sample --help`` lists them). FILE ending in
``.npy`` gets uint8 images shaped (N, 28, 28), the format ``python -m book_utils.metrics``
scores; FILE ending in ``.png`` gets one grid of all N images.

Each model is one entry of :data:`MODELS`: a function that loads the model from its
committed checkpoint and returns a *sampler*, ``sampler(n, generator)`` -> n float images
in [-1, 1] shaped (n, 1, 28, 28), plus the checkpoint's file name and the chapter that
makes it. Adding a model to the book (and to chapter 05's table) is adding one entry.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from book_utils.data import from_signed_unit
from book_utils.models.dcgan import DCGANConfig, DCGANGenerator
from book_utils.models.mlp_gan import MLPGANConfig, MLPGenerator
from book_utils.models.vae import VAE, VAEConfig
from book_utils.training import CHECKPOINT_DIR, load_finished

# sampler(n, generator) -> float images in [-1, 1], (n, 1, 28, 28); noise drawn on the CPU
Sampler = Callable[[int, torch.Generator | None], torch.Tensor]


class UnknownModelError(ValueError):
    """A model name that is not in the registry."""


class MissingCheckpointError(FileNotFoundError):
    """The model's finished checkpoint is not there (yet)."""


# --------------------------------------------------------------------------- loaders
def load_mlp_gan(checkpoint: Path, device: torch.device) -> Sampler:
    """The fully connected GAN of chapter 02: its generator's ``sample``."""
    config = MLPGANConfig()
    G = MLPGenerator(config)
    load_finished(checkpoint, model_name="mlp_gan", config=config, modules={"G": G})
    return G.to(device).eval().sample


def load_dcgan(checkpoint: Path, device: torch.device) -> Sampler:
    """The DCGAN of chapter 03: its generator's ``sample`` (batch norm in eval mode)."""
    config = DCGANConfig()
    G = DCGANGenerator(config)
    load_finished(checkpoint, model_name="dcgan", config=config, modules={"G": G})
    return G.to(device).eval().sample


def load_vae(checkpoint: Path, device: torch.device) -> Sampler:
    """The VAE of chapter 04: the decoder's pixel means for z ~ N(0, I), mapped to [-1, 1]."""
    config = VAEConfig()
    vae = VAE(config)
    load_finished(checkpoint, model_name="vae", config=config, modules={"vae": vae})
    vae = vae.to(device).eval()

    def sampler(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return vae.sample(n, generator=generator) * 2 - 1  # [0, 1] -> [-1, 1]

    return sampler


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class ModelEntry:
    """One model of the book: how to load it, and where its checkpoint comes from."""

    load: Callable[[Path, torch.device], Sampler]  # (checkpoint path, device) -> sampler
    checkpoint: str  # file name in book_utils/checkpoints/
    chapter: str  # the chapter whose full-mode run writes the checkpoint, e.g. "02_mlp_gan"
    description: str  # one line for --help and for tables


# To add a model, write its loader (returning a sampler) and one entry below.
MODELS: dict[str, ModelEntry] = {
    "mlp_gan": ModelEntry(load_mlp_gan, "mlp_gan.pt", "02_mlp_gan", "MLP GAN (chapter 02)"),
    "dcgan": ModelEntry(load_dcgan, "dcgan.pt", "03_dcgan", "DCGAN (chapter 03)"),
    "vae": ModelEntry(load_vae, "vae.pt", "04_vae", "VAE (chapter 04)"),
}


def available_models() -> list[str]:
    """The short names of the book's generative models, in the order of the book."""
    return list(MODELS)


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise UnknownModelError(
            f"unknown model {name!r}; the book's models are: {', '.join(available_models())}"
        )
    return MODELS[name]


def checkpoint_path(name: str) -> Path:
    """Where the finished checkpoint of model ``name`` lives."""
    return CHECKPOINT_DIR / _entry(name).checkpoint


def how_to_make(name: str) -> str:
    """The commands (run from the book's ``chapters/`` folder) that write the checkpoint."""
    chapter = _entry(name).chapter
    notebook = f"/tmp/{chapter}.ipynb"
    return (
        f"BOOK_MODE=full BOOK_RETRAIN=1 ../.venv/bin/jupytext --to ipynb --output {notebook} "
        f"{chapter}.md\n"
        f"BOOK_MODE=full BOOK_RETRAIN=1 ../.venv/bin/jupyter nbconvert --to notebook --execute "
        f"--ExecutePreprocessor.timeout=3600 {notebook} --output /tmp/{chapter}_out.ipynb"
    )


def load_sampler(name: str, device: str | torch.device = "cpu") -> Sampler:
    """Load model ``name`` from its committed checkpoint; return its sampler.

    Raises :class:`UnknownModelError` (listing the valid names) for an unknown name and
    :class:`MissingCheckpointError` (saying which commands make it) for a missing file.
    """
    entry = _entry(name)
    path = checkpoint_path(name)
    if not path.is_file():
        raise MissingCheckpointError(
            f"no checkpoint for {name!r} at {path}. It is written by running chapter "
            f"{entry.chapter} in full mode with retraining, from the chapters/ folder:\n"
            + how_to_make(name)
        )
    return entry.load(path, torch.device(device))


# --------------------------------------------------------------------------- sampling
def draw_samples(
    name: str,
    n: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 1000,
    progress: bool = False,
) -> torch.Tensor:
    """n samples of model ``name`` as uint8 images (n, 28, 28), on the CPU.

    The noise comes from one CPU generator seeded with ``seed``, drawn batch after batch:
    the same name, n, seed and batch_size give the same images (on the CPU exactly; a GPU
    may differ in the last bits). ``progress`` shows a bar on stderr.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n!r}")
    n = int(n)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sampler = load_sampler(name, device)
    generator = torch.Generator().manual_seed(seed)
    images = torch.empty(n, 28, 28, dtype=torch.uint8)
    with tqdm(total=n, desc=f"sampling {name}", unit="img", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            x = sampler(size, generator)  # (size, 1, 28, 28) in [-1, 1]
            if tuple(x.shape) != (size, 1, 28, 28):
                raise RuntimeError(
                    f"model {name!r} returned shape {tuple(x.shape)}, expected {(size, 1, 28, 28)}"
                )
            images[start : start + size] = from_signed_unit(x.float().cpu())  # (size, 28, 28)
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


# --------------------------------------------------------------------------- command line
def _model_list() -> str:
    lines = []
    for name, entry in MODELS.items():
        missing = "" if checkpoint_path(name).is_file() else "  [checkpoint missing]"
        lines.append(f"  {name:10s} {entry.description}, book_utils/checkpoints/{entry.checkpoint}")
        lines[-1] += missing
    return "models:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m book_utils.sample",
        usage="%(prog)s MODEL --n N --out FILE [--seed S] [--device D]",
        description="Draw samples from one of the book's trained generative models and "
        "write them as a .npy of uint8 images (N, 28, 28) or as a PNG grid.",
        epilog=_model_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="short name of the model (see below)")
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="output file, .npy or .png"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the noise (default 0)"
    )
    parser.add_argument(
        "--device", default="cpu", metavar="D", help="torch device, e.g. cpu or cuda"
    )
    args = parser.parse_args(argv)

    if args.model not in MODELS:
        parser.error(
            f"unknown model {args.model!r}; choose one of: {', '.join(available_models())}"
        )
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    suffix = args.out.suffix.lower()
    if suffix not in (".npy", ".png"):
        parser.error(f"--out must end in .npy or .png, got {args.out}")
    try:
        images = draw_samples(args.model, args.n, seed=args.seed, device=args.device, progress=True)
    except MissingCheckpointError as err:
        raise SystemExit(f"error: {err}") from err
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(args.out, images.numpy())
    else:
        save_png_grid(images, args.out)
    print(
        f"wrote {args.n} samples of {args.model} (seed {args.seed}) to {args.out}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
