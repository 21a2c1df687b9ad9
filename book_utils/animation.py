"""Sample grids across training as an animation (matplotlib, no extra dependencies).

:func:`animate_grids` turns the fixed-noise grids recorded during training into a
``FuncAnimation``; in a notebook, ``IPython.display.HTML(anim.to_jshtml())`` shows it with
play and step buttons, and the HTML is self-contained, so it also plays on the book's site.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation
from torchvision.utils import make_grid

from book_utils.plotting import ArrayLike, images_to_unit_range


def animate_grids(
    grids: Sequence[ArrayLike],
    labels: Sequence[str],
    nrow: int = 8,
    interval_ms: int = 400,
    size: float = 3.5,
    dpi: int = 80,
) -> FuncAnimation:
    """One frame per image batch of ``grids`` (e.g. (64, 28, 28) uint8), titled by ``labels``.

    ``size`` (inches) and ``dpi`` set the frame size: the defaults give about one screen
    pixel per image pixel, which keeps an embedded animation of 16 frames near a megabyte.
    Returns the animation; the figure is closed so that a notebook shows only the animation.
    """
    if len(grids) == 0:
        raise ValueError("grids is empty")
    if len(labels) != len(grids):
        raise ValueError(f"got {len(labels)} labels for {len(grids)} frames")
    frames = [
        make_grid(images_to_unit_range(g), nrow=nrow, padding=2, pad_value=1.0)[0].numpy()
        for g in grids
    ]  # each (H', W') in [0, 1]
    height = size * frames[0].shape[0] / frames[0].shape[1] + 0.3  # room for the title
    fig, ax = plt.subplots(figsize=(size, height), dpi=dpi)
    image = ax.imshow(frames[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    title = ax.set_title(labels[0])
    ax.set_axis_off()
    fig.tight_layout()

    def draw(i: int) -> list:
        image.set_data(frames[i])
        title.set_text(labels[i])
        return [image, title]

    anim = FuncAnimation(fig, draw, frames=len(frames), interval=interval_ms, blit=False)
    plt.close(fig)
    return anim
