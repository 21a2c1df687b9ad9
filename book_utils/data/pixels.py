"""Pixel values in their three ranges, and every conversion between them.

MNIST stores a pixel as a byte, 0 (black) to 255 (white): uint8 images (N, 28, 28). The
networks see float32 images with a channel axis, (N, 1, 28, 28), in one of two ranges:

* [-1, 1], the range of a generator that ends in tanh (the GANs, and the classifier);
* [0, 1], the range of a Bernoulli decoder's pixel probabilities (the VAE).

    bytes --to_signed_unit--> [-1, 1] --from_signed_unit--> bytes
    bytes --to_unit---------> [0, 1]  --from_unit---------> bytes
    [0, 1] --unit_to_signed--> [-1, 1] --signed_to_unit--> [0, 1]
    [0, 1] --binarize--> {0, 1}

Going to bytes, values outside the range are clamped and each pixel is rounded to the
nearest byte, so ``from_unit(to_unit(x))`` and ``from_signed_unit(to_signed_unit(x))``
give back ``x`` exactly.
"""

from __future__ import annotations

import torch


def to_signed_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255], (N, 28, 28) -> float32 in [-1, 1], (N, 1, 28, 28).

    A batch that already has its channel axis, (N, C, H, W), keeps its shape.
    """
    _check_bytes(x, "to_signed_unit")
    return _with_channel(x.to(torch.float32) / 127.5 - 1.0)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255], (N, 28, 28) -> float32 in [0, 1], (N, 1, 28, 28).

    A batch that already has its channel axis, (N, C, H, W), keeps its shape.
    """
    _check_bytes(x, "to_unit")
    return _with_channel(x.to(torch.float32) / 255.0)


def from_signed_unit(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1], (N, 1, 28, 28) -> uint8 in [0, 255], (N, 28, 28)."""
    _check_one_channel(x, "from_signed_unit")
    return _round_to_bytes((x.clamp(-1.0, 1.0) + 1.0) * 127.5)


def from_unit(p: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1], (N, 1, 28, 28) -> uint8 in [0, 255], (N, 28, 28).

    For a VAE's pixel probabilities: each byte is 255 times the probability, rounded.
    """
    _check_one_channel(p, "from_unit")
    return _round_to_bytes(p.clamp(0.0, 1.0) * 255.0)


def signed_to_unit(x: torch.Tensor) -> torch.Tensor:
    """Float pixels in [-1, 1] -> [0, 1], any shape: (x + 1) / 2."""
    _check_float(x, "signed_to_unit")
    return (x + 1) / 2


def unit_to_signed(p: torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1] -> [-1, 1], any shape: 2p - 1."""
    _check_float(p, "unit_to_signed")
    return p * 2 - 1


def binarize(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary images: each pixel is 1 with probability p (float in [0, 1]), else 0.

    Called on every minibatch, this is *dynamic* binarisation (a fresh draw each time the
    image is seen); called once with a seeded ``generator``, it fixes a binary test set.
    The generator must live on p's device.
    """
    _check_float(p, "binarize", hint="; convert uint8 images with to_unit first")
    # No range check here: it would wait for the GPU on every training step. torch.bernoulli
    # itself rejects probabilities outside [0, 1].
    return torch.bernoulli(p, generator=generator)


def _with_channel(x: torch.Tensor) -> torch.Tensor:
    return x if x.dim() >= 4 else x.unsqueeze(-3)  # (N, 28, 28) -> (N, 1, 28, 28)


def _round_to_bytes(x: torch.Tensor) -> torch.Tensor:
    return x.round().to(torch.uint8).squeeze(-3)  # (N, 1, 28, 28) in [0, 255] -> (N, 28, 28)


def _check_bytes(x: torch.Tensor, name: str) -> None:
    if x.dtype != torch.uint8:
        raise TypeError(f"{name} expects uint8 pixels in [0, 255], got {x.dtype}")


def _check_float(x: torch.Tensor, name: str, hint: str = "") -> None:
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} expects float pixels, got {x.dtype}{hint}")


def _check_one_channel(x: torch.Tensor, name: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 1:
        raise ValueError(f"{name} expects one channel, (N, 1, 28, 28); got {tuple(x.shape)}")
