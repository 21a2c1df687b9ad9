"""Score generated MNIST samples against the MNIST test set; print one JSON object.

    python -m book_utils.metrics SAMPLES [--n-reference 10000] [--seed 0]

SAMPLES is a ``.npy`` file of uint8 images shaped (N, 28, 28), or a folder of 28x28
grayscale PNG files. The output holds fid, kid (raw; the book prints KID x 10^3) and
kid_std, class_score, precision, recall and the histogram of the digits the classifier
sees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from book_utils.data import load_mnist
from book_utils.metrics.score import score_samples


def read_samples(path: Path) -> torch.Tensor:
    """Load (N, 28, 28) uint8 images from a .npy file or a folder of PNGs."""
    if path.is_dir():
        from PIL import Image

        files = sorted(path.glob("*.png"))
        if not files:
            raise SystemExit(f"error: no .png files in folder {path}")
        arrays = [np.asarray(Image.open(f).convert("L")) for f in files]
        shapes = {a.shape for a in arrays}
        if shapes != {(28, 28)}:
            raise SystemExit(f"error: every PNG must be 28x28 grayscale, found sizes {shapes}")
        return torch.from_numpy(np.stack(arrays))
    if path.suffix != ".npy" or not path.is_file():
        raise SystemExit(f"error: {path} is neither a .npy file nor a folder of PNGs")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise SystemExit(f"error: cannot read {path} as a plain .npy array ({err})") from err
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != (28, 28):
        raise SystemExit(
            f"error: {path} holds {array.dtype} {array.shape}; expected uint8 images shaped "
            "(N, 28, 28) (convert float tensors in [0, 1] with book_utils.data.from_unit)"
        )
    return torch.from_numpy(array)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m book_utils.metrics", description=__doc__.splitlines()[0]
    )
    parser.add_argument("samples", type=Path, help=".npy of uint8 (N, 28, 28) or a PNG folder")
    parser.add_argument("--n-reference", type=int, default=10_000, help="test images to use")
    parser.add_argument("--seed", type=int, default=0, help="seed of the KID subsets")
    args = parser.parse_args(argv)
    samples = read_samples(args.samples)
    print(f"scoring {len(samples)} samples...", file=sys.stderr)
    reference = load_mnist().x_test[: args.n_reference]
    try:
        result = score_samples(samples, reference, seed=args.seed)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
