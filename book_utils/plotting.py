"""Plotting helpers of the book (matplotlib).

Every function draws into an optional ``ax`` (a new figure is made when it is None)
and returns the Axes, or the Figure for multi-panel plots. Wrong-shaped input raises
a ``ValueError`` that says which shape was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from book_utils.data import signed_to_unit, to_unit

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]

REAL_COLOR = "tab:blue"
FAKE_COLOR = "tab:orange"


def _new_ax(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def _as_image_batch(x: ArrayLike) -> torch.Tensor:
    """Any supported image batch -> float tensor (N, C, H, W), values unchanged."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.detach().cpu()
    if t.ndim == 2:  # (N, H*W) flattened square images, e.g. (N, 784)
        side = math.isqrt(t.shape[1])
        if side * side != t.shape[1] or side < 2:
            raise ValueError(
                f"a 2-D image batch must be (N, H*W) with square images, got {tuple(t.shape)}"
            )
        t = t.reshape(t.shape[0], 1, side, side)  # (N, 1, H, W)
    elif t.ndim == 3:  # (N, H, W)
        t = t.unsqueeze(1)  # (N, 1, H, W)
    elif t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(
            "images must have shape (N, H, W), (N, 1, H, W), (N, 3, H, W) or (N, H*W), "
            f"got {tuple(t.shape)}"
        )
    if t.shape[0] == 0:
        raise ValueError("no images to show")
    return t


def images_to_unit_range(
    x: ArrayLike, value_range: tuple[float, float] | None = None
) -> torch.Tensor:
    """Map an image batch to float (N, C, H, W) in [0, 1].

    ``value_range`` is the range the pixels live in, e.g. ``(-1, 1)`` for a tanh
    generator or ``(0, 255)``. None guesses: uint8 -> (0, 255); floats with a negative
    value -> (-1, 1); other floats -> (0, 1).
    """
    t = _as_image_batch(x)  # (N, C, H, W), values and dtype unchanged
    if value_range is None:  # guess the range from the dtype and the values
        if t.dtype == torch.uint8:
            return to_unit(t)
        t = t.float()
        return (signed_to_unit(t) if t.min() < 0 else t).clamp(0.0, 1.0)
    low, high = value_range
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    return ((t.float() - low) / (high - low)).clamp(0.0, 1.0)


def show_images(
    x: ArrayLike,
    nrow: int = 8,
    title: str | None = None,
    ax: Axes | None = None,
    value_range: tuple[float, float] | None = None,
) -> Axes:
    """Show a batch of images as one grid (``torchvision.utils.make_grid``), nrow per row.

    Accepts uint8 or float batches of shape (N, H, W), (N, C, H, W) with C in {1, 3},
    or (N, H*W). See :func:`images_to_unit_range` for ``value_range``.
    """
    t = images_to_unit_range(x, value_range)  # (N, C, H, W) in [0, 1]
    grid = make_grid(t, nrow=nrow, padding=2, pad_value=1.0)  # (3, H', W')
    ax = _new_ax(ax, figsize=(min(nrow, t.shape[0]) * 0.6 + 0.5, 4.0))
    if t.shape[1] == 1:
        ax.imshow(grid[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)  # (H', W')
    else:
        ax.imshow(grid.permute(1, 2, 0).numpy())  # (H', W', 3)
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return ax


# ---------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------


def moving_average(values: ArrayLike, window: int) -> np.ndarray:
    """Trailing moving average; the first points average over what is there so far."""
    v = _to_numpy(values).astype(np.float64)
    if window <= 1 or v.size == 0:
        return v
    csum = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(v.size):
        lo = max(0, i + 1 - window)
        out[i] = (csum[i + 1] - csum[lo]) / (i + 1 - lo)
    return out


def plot_losses(
    history: Mapping[str, Sequence[float]],
    keys: Sequence[str] | None = None,
    ax: Axes | None = None,
    smooth: int = 1,
    title: str | None = None,
) -> Axes:
    """One line per key of ``history`` (losses, D(x), D(G(z))...) against the step.

    If ``history`` has a ``"step"`` entry it gives the x axis (and is not plotted);
    otherwise the index is used. ``smooth`` > 1 plots a trailing moving average over
    that many points.
    """
    if keys is None:
        keys = [k for k in history if k != "step"]
    if len(keys) == 0:
        raise ValueError("nothing to plot: history has no curves")
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"keys {missing} not in history (has {list(history)})")
    n = len(history[keys[0]])
    for k in keys:
        if len(history[k]) != n:
            raise ValueError(f"curve {k!r} has {len(history[k])} points, {keys[0]!r} has {n}")
    steps = _to_numpy(history["step"]) if "step" in history else np.arange(n)
    if len(steps) != n:
        raise ValueError(f"'step' has {len(steps)} entries but the curves have {n}")
    ax = _new_ax(ax, figsize=(6.0, 3.5))
    for k in keys:
        ax.plot(steps, moving_average(history[k], smooth), label=k)
    ax.set_xlabel("step")
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return ax


def plot_density_1d(
    x_grid: ArrayLike,
    curves: Mapping[str, ArrayLike],
    ax: Axes | None = None,
    samples: ArrayLike | Mapping[str, ArrayLike] | None = None,
    bins: int = 60,
) -> Axes:
    """Curves over a 1-D grid (densities, D(x)...) with optional sample histograms.

    ``samples`` is one array or a dict name -> array; each is drawn as a normalised
    histogram behind the curves.
    """
    xs = _to_numpy(x_grid)
    if xs.ndim != 1:
        raise ValueError(f"x_grid must be 1-D, got shape {xs.shape}")
    ax = _new_ax(ax, figsize=(6.0, 3.5))
    if samples is not None:
        named = samples if isinstance(samples, Mapping) else {"samples": samples}
        for name, s in named.items():
            s = _to_numpy(s).ravel()
            ax.hist(s, bins=bins, density=True, alpha=0.3, label=name)
    for name, y in curves.items():
        ys = _to_numpy(y)
        if ys.shape != xs.shape:
            raise ValueError(f"curve {name!r} has shape {ys.shape}, x_grid has {xs.shape}")
        ax.plot(xs, ys, label=name)
    ax.set_xlabel("x")
    ax.legend()
    return ax


# ---------------------------------------------------------------------------
# 2-D points
# ---------------------------------------------------------------------------


def _as_points_2d(x: ArrayLike, name: str) -> np.ndarray:
    p = _to_numpy(x)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {p.shape}")
    return p


def plot_samples_2d(
    real: ArrayLike,
    fake: ArrayLike | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    s: float = 4.0,
) -> Axes:
    """Scatter of real points (blue) and, optionally, generated points (orange)."""
    r = _as_points_2d(real, "real")
    f = None if fake is None else _as_points_2d(fake, "fake")
    ax = _new_ax(ax, figsize=(4.0, 4.0))
    ax.scatter(r[:, 0], r[:, 1], s=s, alpha=0.5, color=REAL_COLOR, label="real", linewidths=0)
    if f is not None:
        ax.scatter(f[:, 0], f[:, 1], s=s, alpha=0.5, color=FAKE_COLOR, label="fake", linewidths=0)
    ax.set_aspect("equal")
    if title is not None:
        ax.set_title(title)
    return ax


def plot_decision_surface_2d(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    ax: Axes | None = None,
    real: ArrayLike | None = None,
    fake: ArrayLike | None = None,
    resolution: int = 200,
    colorbar: bool = True,
) -> Axes:
    """Filled contours of D(x) = sigmoid(logit(x)) over a rectangle of the plane.

    ``discriminator`` maps points (M, 2) to logits (M,) or (M, 1). The D = 0.5 level
    is drawn as a dashed line; optional real / fake points are scattered on top.
    """
    if len(xlim) != 2 or len(ylim) != 2 or not (xlim[1] > xlim[0] and ylim[1] > ylim[0]):
        raise ValueError(f"xlim and ylim must be (low, high) with high > low, got {xlim}, {ylim}")
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    xs = torch.linspace(xlim[0], xlim[1], resolution)
    ys = torch.linspace(ylim[0], ylim[1], resolution)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")  # (R, R) each
    grid = torch.stack([gx.flatten(), gy.flatten()], dim=1)  # (R*R, 2)
    params = getattr(discriminator, "parameters", None)
    if params is not None:
        first = next(iter(params()), None)
        if first is not None:
            grid = grid.to(first.device)
    with torch.no_grad():
        logits = discriminator(grid)
    if logits.numel() != grid.shape[0]:
        raise ValueError(
            f"the discriminator returned {tuple(logits.shape)} for {grid.shape[0]} points; "
            "expected one logit per point"
        )
    prob = torch.sigmoid(logits.float()).reshape(resolution, resolution).cpu().numpy()  # (R, R)
    ax = _new_ax(ax, figsize=(5.0, 4.0))
    levels = np.linspace(0.0, 1.0, 21)
    cs = ax.contourf(gx.numpy(), gy.numpy(), prob, levels=levels, cmap="RdBu_r", vmin=0, vmax=1)
    ax.contour(gx.numpy(), gy.numpy(), prob, levels=[0.5], colors="k", linestyles="--")
    if colorbar:
        cbar = ax.figure.colorbar(cs, ax=ax, ticks=np.linspace(0.0, 1.0, 6))
        cbar.ax.set_title("D(x)", fontsize="medium")
    if real is not None:
        r = _as_points_2d(real, "real")
        ax.scatter(r[:, 0], r[:, 1], s=3, color="k", alpha=0.5, label="real", linewidths=0)
    if fake is not None:
        f = _as_points_2d(fake, "fake")
        ax.scatter(f[:, 0], f[:, 1], s=3, color=FAKE_COLOR, alpha=0.7, label="fake", linewidths=0)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    return ax


# ---------------------------------------------------------------------------
# Strips across training
# ---------------------------------------------------------------------------


def plot_sample_strip(
    grids: Sequence[ArrayLike],
    labels: Sequence[str],
    real: ArrayLike | None = None,
    axes: Sequence[Axes] | None = None,
    lim: float | None = None,
    nrow: int = 8,
    panel_size: float = 2.6,
    title: str | None = None,
) -> Figure:
    """A row of panels, one per training checkpoint, titled by ``labels``.

    Each entry of ``grids`` is either 2-D points (N, 2), drawn as a scatter over the
    optional ``real`` points with shared limits (``lim`` gives [-lim, lim]; None fits
    all points), or an image batch, drawn with :func:`show_images`.
    """
    if len(grids) == 0:
        raise ValueError("grids is empty")
    if len(labels) != len(grids):
        raise ValueError(f"got {len(labels)} labels for {len(grids)} panels")
    if axes is None:
        fig, ax_arr = plt.subplots(
            1, len(grids), figsize=(panel_size * len(grids), panel_size + 0.4), squeeze=False
        )
        axes = list(ax_arr[0])
    elif len(axes) != len(grids):
        raise ValueError(f"got {len(axes)} axes for {len(grids)} panels")
    fig = axes[0].figure

    def is_points(g: ArrayLike) -> bool:
        return np.ndim(g) == 2 and np.shape(g)[1] == 2

    point_sets = [_to_numpy(g) for g in grids if is_points(g)]
    if real is not None:
        point_sets.append(_as_points_2d(real, "real"))
    if lim is None and point_sets:
        lim = 1.05 * max(float(np.abs(p).max()) for p in point_sets)
    for ax, g, label in zip(axes, grids, labels, strict=True):
        if is_points(g):
            if real is not None:
                plot_samples_2d(real, g, ax=ax, title=label)
            else:
                p = _to_numpy(g)
                ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.5, color=FAKE_COLOR, linewidths=0)
                ax.set_aspect("equal")
                ax.set_title(label)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            show_images(g, nrow=nrow, title=label, ax=ax)
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Sweeps: a score against CPU-minutes, one curve per setting
# ---------------------------------------------------------------------------


def load_sweep(folder: str | Path, prefix: str = "") -> dict[str, dict]:
    """The curves a sweep wrote to ``folder`` (one ``<setting>.json`` each) whose names
    start with ``prefix``, by name, in alphabetical order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of sweep curves")
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob(f"{prefix}*.json"))}


def plot_sweep(
    curves: Mapping[str, Mapping],
    ylabel: str,
    column: int = 4,
    log: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """One line per curve of a sweep (``scripts/sweep_*.py``): the score in column
    ``column`` of each point (step, CPU-minutes, wall-minutes, mean loss, score, ...)
    against its CPU-minutes, labelled by the curve's name."""
    ax = _new_ax(ax, figsize=(8.0, 4.5))
    for name, curve in curves.items():
        points = curve.get("points")
        if not points or len(points[0]) <= column:
            raise ValueError(f"curve {name!r} has no points with a column {column}")
        minutes = [point[1] for point in points]
        ax.plot(minutes, [point[column] for point in points], marker="o", label=name)
    ax.set_xlabel("CPU-minutes of training (one thread)")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax
