"""Test log-likelihood of a VAE in nats, from the importance-weighted bound (chapter 04).

log p(x) is intractable for a VAE, but the bound L_K of :func:`book_utils.losses.iwae_bound`
approaches it from below as the number K of importance samples grows. With K = 5000 the
gap is small enough that papers report L_5000 as "the" test log-likelihood (Burda et al.,
2016). Evaluating it means K decoder passes per image, so the work is split into batches
of images and chunks of samples, which combine exactly:

    log sum_k w_k = logsumexp over chunks c of ( log sum_{k in c} w_k ).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from tqdm import tqdm

from book_utils.losses import iwae_bound
from book_utils.models.layers import eval_mode


@eval_mode
def estimate_log_likelihood(
    vae: nn.Module,
    x: torch.Tensor,
    num_samples: int = 5000,
    *,
    batch_size: int = 100,
    chunk_size: int = 500,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """L_K(x) for every image of x (N, 1, 28, 28) in {0, 1}: a (N,) float64 tensor, in nats.

    x should already be on the VAE's device. ``chunk_size`` samples of ``batch_size``
    images are decoded at once (memory grows with their product). The mean of the result
    is the test log-likelihood bound; its negative is the NLL that papers report.
    """
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"x must be binary images (N, 1, 28, 28), got {tuple(x.shape)}")
    if num_samples < 1 or batch_size < 1 or chunk_size < 1:
        raise ValueError("num_samples, batch_size and chunk_size must be positive")
    if x.numel() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("x must be binary (0 or 1 pixels): binarize the images first")
    out = torch.empty(len(x), dtype=torch.float64)
    chunks = [min(chunk_size, num_samples - s) for s in range(0, num_samples, chunk_size)]
    for start in tqdm(range(0, len(x), batch_size), desc=f"L_{num_samples}", disable=not progress):
        xb = x[start : start + batch_size]  # (b, 1, 28, 28)
        # log sum_{k in chunk} w_k = L_k(chunk) + log k, for each chunk: (num_chunks, b)
        partial = torch.stack(
            [iwae_bound(vae, xb, k, generator).double() + math.log(k) for k in chunks]
        )
        out[start : start + len(xb)] = (
            torch.logsumexp(partial, dim=0) - math.log(num_samples)
        ).cpu()
    return out
