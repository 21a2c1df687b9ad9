"""Plotting helpers: run headless, return the right type, draw what they should."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from book_utils.plotting import (  # noqa: E402
    images_to_unit_range,
    load_sweep,
    moving_average,
    plot_decision_surface_2d,
    plot_density_1d,
    plot_losses,
    plot_sample_strip,
    plot_samples_2d,
    plot_sweep,
    show_images,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- show_images -----------------------------------------------------------------------------


def test_show_images_uint8_grid_size():
    x = torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8)
    ax = show_images(x, nrow=8, title="digits")
    assert isinstance(ax, Axes)
    assert len(ax.images) == 1
    expected = make_grid(torch.zeros(16, 1, 28, 28), nrow=8, padding=2).shape  # (3, 62, 242)
    assert ax.images[0].get_array().shape == tuple(expected[1:])
    assert ax.get_title() == "digits"


def test_show_images_value_ranges():
    x01 = torch.rand(4, 1, 8, 8)
    xm11 = x01 * 2 - 1
    # auto-detect: a negative value means [-1, 1]
    torch.testing.assert_close(images_to_unit_range(xm11), x01)
    torch.testing.assert_close(images_to_unit_range(x01), x01)
    torch.testing.assert_close(images_to_unit_range(xm11, value_range=(-1, 1)), x01)
    u8 = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)  # (1, 2, 2)
    torch.testing.assert_close(images_to_unit_range(u8), torch.tensor([[[[0.0, 1.0], [0.2, 0.4]]]]))
    with pytest.raises(ValueError):
        images_to_unit_range(x01, value_range=(1, 0))


def test_show_images_shapes_accepted_and_rejected():
    ax = show_images(torch.rand(10, 784), nrow=5)  # flattened 28x28
    assert ax.images[0].get_array().shape == (2 * 30 + 2, 5 * 30 + 2)
    ax = show_images(np.random.rand(3, 3, 8, 8))  # colour
    assert ax.images[0].get_array().shape == (12, 32, 3)
    with pytest.raises(ValueError, match="shape"):
        show_images(torch.rand(4, 2, 8, 8))
    with pytest.raises(ValueError, match="square"):
        show_images(torch.rand(4, 10))
    with pytest.raises(ValueError):
        show_images(torch.rand(8))


def test_show_images_draws_into_given_axes():
    fig, ax = plt.subplots()
    out = show_images(torch.rand(4, 1, 8, 8), ax=ax)
    assert out is ax


# --- curves ----------------------------------------------------------------------------------


def test_plot_losses_lines_and_steps():
    history = {"step": [0, 10, 20, 30], "d_loss": [1.0, 0.9, 0.8, 0.7], "g_loss": [2, 1, 1, 1]}
    ax = plot_losses(history)
    assert isinstance(ax, Axes)
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 10, 20, 30])
    ax = plot_losses(history, keys=["d_loss"], smooth=2)
    assert len(ax.lines) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.95, 0.85, 0.75])


def test_plot_losses_rejects_bad_history():
    with pytest.raises(ValueError, match="not in history"):
        plot_losses({"a": [1.0]}, keys=["b"])
    with pytest.raises(ValueError, match="points"):
        plot_losses({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError):
        plot_losses({})


def test_moving_average():
    np.testing.assert_allclose(moving_average([1, 2, 3, 4], 3), [1.0, 1.5, 2.0, 3.0])
    np.testing.assert_allclose(moving_average([1, 2, 3], 1), [1, 2, 3])


def test_plot_density_1d():
    x = torch.linspace(-3, 3, 50)
    curves = {"p": torch.exp(-(x**2)), "q": 0.5 * torch.ones(50)}
    ax = plot_density_1d(x, curves, samples={"data": torch.randn(200), "gen": np.zeros(10)})
    assert isinstance(ax, Axes)
    assert len(ax.lines) == 2
    assert len(ax.patches) == 2 * 60  # two histograms of 60 bins
    with pytest.raises(ValueError, match="shape"):
        plot_density_1d(x, {"bad": torch.ones(49)})
    with pytest.raises(ValueError, match="1-D"):
        plot_density_1d(torch.zeros(5, 2), {})


# --- 2-D points ------------------------------------------------------------------------------


def test_plot_samples_2d():
    ax = plot_samples_2d(torch.randn(100, 2), torch.randn(50, 2), title="ring")
    assert isinstance(ax, Axes)
    assert len(ax.collections) == 2
    assert ax.collections[1].get_offsets().shape == (50, 2)
    assert len(plot_samples_2d(np.random.randn(10, 2)).collections) == 1
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot_samples_2d(torch.randn(10, 3))


def test_plot_decision_surface_2d():
    class Linear(torch.nn.Module):  # logit(x) = x_0, so D(x) = sigmoid(x_0)
        def forward(self, x):
            return x[:, 0]

    ax = plot_decision_surface_2d(
        Linear(), (-2, 2), (-1, 1), real=torch.randn(20, 2), fake=torch.randn(30, 2), resolution=20
    )
    assert isinstance(ax, Axes)
    assert len(ax.collections) >= 3  # filled contours, the 0.5 line, two scatters
    assert ax.collections[-1].get_offsets().shape == (30, 2)
    assert ax.get_xlim() == (-2, 2)
    # an nn.Linear with parameters (the device is read from them) and (M, 1) logits
    plot_decision_surface_2d(torch.nn.Linear(2, 1), (-1, 1), (-1, 1), resolution=5)
    with pytest.raises(ValueError, match="high > low"):
        plot_decision_surface_2d(Linear(), (1, -1), (-1, 1))
    with pytest.raises(ValueError, match="one logit per point"):
        plot_decision_surface_2d(torch.nn.Linear(2, 3), (-1, 1), (-1, 1), resolution=5)


# --- strips ----------------------------------------------------------------------------------


def test_plot_sample_strip_points():
    real = torch.randn(100, 2)
    fig = plot_sample_strip([torch.randn(50, 2) for _ in range(3)], ["0", "100", "200"], real=real)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["0", "100", "200"]
    assert all(len(ax.collections) == 2 for ax in fig.axes)
    xlims = {ax.get_xlim() for ax in fig.axes}
    assert len(xlims) == 1  # shared limits across panels


def test_plot_sample_strip_images():
    grids = [torch.rand(16, 1, 28, 28), torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8)]
    fig = plot_sample_strip(grids, ["epoch 1", "epoch 5"], nrow=4)
    assert len(fig.axes) == 2
    assert all(ax.images[0].get_array().shape == (4 * 30 + 2, 4 * 30 + 2) for ax in fig.axes)


def test_plot_sample_strip_rejects_mismatch():
    with pytest.raises(ValueError, match="labels"):
        plot_sample_strip([torch.randn(5, 2)], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        plot_sample_strip([], [])


# --- sweeps ----------------------------------------------------------------------------------


def test_load_and_plot_sweep(tmp_path):
    import json

    for name, scores in [("a_fast", [300.0, 100.0]), ("a_slow", [400.0, 200.0]), ("b", [1.0])]:
        points = [[10 * (i + 1), 5.0 * (i + 1), 6.0, 0.5, s] for i, s in enumerate(scores)]
        (tmp_path / f"{name}.json").write_text(json.dumps({"points": points}))
    curves = load_sweep(tmp_path, prefix="a_")
    assert list(curves) == ["a_fast", "a_slow"]
    ax = plot_sweep(curves, "FID")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["a_fast", "a_slow"]
    assert list(lines[1].get_xdata()) == [5.0, 10.0]
    assert list(lines[1].get_ydata()) == [400.0, 200.0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "FID"
    with pytest.raises(ValueError, match="column 6"):
        plot_sweep(curves, "FID", column=6)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_sweep(tmp_path / "missing")
