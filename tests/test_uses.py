"""Chapter 09: masks, the projections, the restoring loop, the VAE's inpainting, the
baselines, the attribute measurements and directions, the detector, the stand-in rule and
the table."""

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from book_utils.checkpoint import from_pretrained, plain, settings_differences
from book_utils.data import load_mnist, signed_to_unit, to_unit, unit_to_signed
from book_utils.diffusion import DiffusionTrainConfig, NoiseSchedule, SamplerEvalConfig
from book_utils.models.unet import UNetConfig
from book_utils.uses import (
    Detector,
    attribute_direction,
    downsample,
    half_mask,
    hidden_error,
    ink,
    markdown_table,
    nearest_on_known,
    noise_level_time,
    paste,
    project_low_resolution,
    restore,
    shifted,
    slant,
    square_mask,
    vae_inpaint,
)


class ZeroNoise(nn.Module):
    """A stand-in network that predicts no noise at all."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return self.weight * x


def test_masks_hide_what_they_say():
    for hidden in ["bottom", "top", "left", "right"]:
        mask = half_mask(hidden)
        assert mask.shape == (1, 1, 28, 28) and mask.sum() == 28 * 14
    assert half_mask("bottom")[0, 0, 14:].sum() == 0 and half_mask("bottom")[0, 0, :14].all()
    square = square_mask(12)
    assert square.sum() == 784 - 144 and square[0, 0, 8:20, 8:20].sum() == 0
    with pytest.raises(ValueError, match="hidden must be one of"):
        half_mask("middle")
    with pytest.raises(ValueError, match="size"):
        square_mask(0)


def test_paste_keeps_the_known_pixels():
    known, guess = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    mask = square_mask(10)
    out = paste(known, guess, mask)
    assert torch.equal(out[mask.expand_as(out) == 1], known[mask.expand_as(out) == 1])
    assert torch.equal(out[mask.expand_as(out) == 0], guess[mask.expand_as(out) == 0])


def test_low_resolution_projection_is_the_nearest_consistent_image():
    rng = torch.Generator().manual_seed(0)
    x, y_low = torch.randn(3, 1, 28, 28, generator=rng), torch.randn(3, 1, 14, 14, generator=rng)
    out = project_low_resolution(x, y_low)
    assert torch.allclose(downsample(out), y_low, atol=1e-6)
    change = out - x  # the same within each 2 x 2 block: the nearest such image
    blocks = torch.nn.functional.interpolate(downsample(change), scale_factor=2)
    assert torch.allclose(change, blocks, atol=1e-6)
    assert torch.allclose(project_low_resolution(out, y_low), out, atol=1e-6)  # idempotent


def test_noise_level_time_matches_the_forward_process():
    schedule = NoiseSchedule.named("cosine", 1000)
    for sigma in [0.1, 0.5, 1.0]:
        t = noise_level_time(schedule, sigma)
        abar = float(schedule.alpha_bar[t])
        assert abar == pytest.approx(1 / (1 + sigma**2), abs=5e-3)
    with pytest.raises(ValueError, match="positive"):
        noise_level_time(schedule, 0.0)


def test_restore_keeps_the_known_pixels_and_repeats_with_a_seed():
    schedule = NoiseSchedule.named("cosine", 100)
    model, mask = ZeroNoise(), half_mask()
    y = torch.rand(2, 1, 28, 28) * 2 - 1

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        start = torch.randn(2, 1, 28, 28, generator=g)
        return restore(model, schedule, start, 5, lambda x0: paste(y, x0, mask), generator=g)

    out = run(0)
    assert out.shape == (2, 1, 28, 28)
    known = mask.expand_as(out) == 1
    assert torch.allclose(out[known], y[known], atol=1e-5)
    assert torch.equal(out, run(0)) and not torch.equal(out, run(1))
    with pytest.raises(ValueError, match="steps"):
        restore(model, schedule, y, 0)
    with pytest.raises(ValueError, match="shaped"):
        restore(model, schedule, torch.zeros(2, 28, 28), 2)


def test_restore_from_an_intermediate_time_with_a_perfect_guess():
    # a network whose guess of x0 is exact returns x0 from any starting point
    schedule = NoiseSchedule.named("cosine", 100)
    x0 = torch.rand(2, 1, 28, 28) * 2 - 1
    eps = torch.randn(2, 1, 28, 28)
    t = torch.full((2,), 40)
    x_t = schedule.q_sample(x0, t, eps)

    class Oracle(ZeroNoise):
        def forward(self, x, t_unit):
            time = (t_unit * 100).round().long().cpu()
            return schedule.eps_from_x0(x, time, x0)

    out = restore(Oracle(), schedule, x_t, 4, t_start=40, eta=0.0)
    assert torch.allclose(out, x0, atol=1e-4)


@pytest.fixture(scope="module")
def test_digits():
    mnist = load_mnist()
    x = to_unit(mnist.x_test[:32]).view(-1, 1, 28, 28)
    return x, mnist.y_test[:32], to_unit(mnist.x_train[:2000]).view(-1, 1, 28, 28)


def test_nearest_on_known_finds_a_training_image_itself(test_digits):
    _, _, train = test_digits
    mask = half_mask()
    found = nearest_on_known(train[:5], mask, train)
    assert torch.equal(found, train[:5])
    with pytest.raises(ValueError, match="one mask"):
        nearest_on_known(train[:2], mask.expand(2, 1, 28, 28), train)
    with pytest.raises(ValueError, match="0 \\(hidden\\) and 1"):
        nearest_on_known(train[:2], mask * 0.5, train)


def test_hidden_error_by_hand():
    x = torch.zeros(1, 1, 28, 28)
    x_hat = torch.zeros(1, 1, 28, 28)
    x_hat[..., 14:, :] = 0.5  # wrong by 0.5 on the hidden half only
    assert hidden_error(x_hat, x, half_mask()).item() == pytest.approx(0.5)
    assert hidden_error(x_hat, x).item() == pytest.approx(0.5 / 2**0.5)


def test_vae_inpainting_fills_the_hole_better_than_black(test_digits):
    x, _, _ = test_digits
    vae, mask = from_pretrained("vae"), square_mask(12)
    filled = vae_inpaint(vae, x, mask, steps=30)
    assert filled.shape == x.shape and filled.min() >= 0 and filled.max() <= 1
    assert torch.equal(filled, vae_inpaint(vae, x, mask, steps=30))  # deterministic
    error = hidden_error(paste(x, filled, mask), x, mask).mean()
    assert error < hidden_error(x * mask, x, mask).mean()


def test_the_committed_diffusion_model_denoises(test_digits):
    x, _, _ = test_digits
    ddpm = from_pretrained("ddpm")
    schedule = ddpm.schedule()
    noisy = unit_to_signed(x) + 0.5 * torch.randn(x.shape, generator=torch.Generator())
    t = noise_level_time(schedule, 0.5)
    start = float(schedule.alpha_bar[t]) ** 0.5 * noisy
    denoised = signed_to_unit(restore(ddpm, schedule, start, 1, t_start=t))
    assert hidden_error(denoised, x).mean() < hidden_error(signed_to_unit(noisy), x).mean()


def test_ink_and_slant_of_drawn_lines():
    upright, leaning = torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    for row in range(4, 24):
        upright[0, 0, row, 14] = 1
        leaning[0, 0, row, 14 + round(0.5 * (14 - row))] = 1  # right as it rises
    assert ink(upright).item() == pytest.approx(20 / 784)
    assert slant(upright).item() == pytest.approx(0.0, abs=1e-6)
    assert slant(leaning).item() == pytest.approx(0.5, abs=0.03)
    assert slant(leaning.flip(-1)).item() == pytest.approx(-0.5, abs=0.03)
    with pytest.raises(ValueError, match="shaped"):
        ink(torch.zeros(28, 28))


def test_attribute_direction_finds_the_attribute_within_classes():
    rng = torch.Generator().manual_seed(0)
    labels = torch.arange(1000) % 4
    z = torch.randn(1000, 8, generator=rng)
    z[:, 1] += 3 * labels  # the class moves along axis 1...
    values = z[:, 0] + 10 * labels  # ...and the attribute grows with axis 0 and the class
    direction = attribute_direction(z, values, labels)
    assert direction.norm().item() == pytest.approx(1.0)
    assert direction[0] > 0.95 and abs(direction[1]) < 0.2
    with pytest.raises(ValueError, match="fraction"):
        attribute_direction(z, values, labels, fraction=0.9)
    with pytest.raises(ValueError, match="one row per image"):
        attribute_direction(z[:10], values, labels)


def test_detector_gives_one_logit_per_image():
    assert Detector()(torch.rand(5, 1, 28, 28)).shape == (5,)


def test_markdown_table_formats_and_marks_missing_values():
    table = markdown_table(
        {"a": {"x": 1.234, "y": "text"}, "b": {"x": None}}, {"x": ".1f", "y": ""}
    )
    lines = table.data.splitlines()
    assert lines[0] == "| | x | y |"
    assert lines[2] == "| a | 1.2 | text |" and lines[3] == "| b | — | — |"


def test_shifted_moves_whole_images_by_at_most_the_shift():
    x = torch.zeros(64, 1, 28, 28)
    x[:, 0, 10:18, 12:16] = 1  # a bar away from the border
    out = shifted(x, 1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))
    assert not torch.equal(out, x)  # some images moved...
    rows, cols = out[:, 0].nonzero(as_tuple=True)[1:]
    assert rows.min() >= 9 and rows.max() <= 18 and cols.min() >= 11 and cols.max() <= 16
    assert torch.equal(out, shifted(x, 1, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="shaped"):
        shifted(torch.zeros(28, 28))


DIFFUSION_RUN = {
    "model": UNetConfig(),
    "train": DiffusionTrainConfig(),
    "eval": SamplerEvalConfig(),
}


def test_settings_differences_marks_the_stand_ins_only():
    """Chapter 09 calls a loaded diffusion model a stand-in when it differs from chapter 06."""
    # the committed diffusion models are, at the time of writing, stand-ins
    for name in ["ddpm", "flow"]:
        differences = settings_differences(from_pretrained(name), DIFFUSION_RUN)
        assert differences["model.channels"] == (16, 64)
        # the record lacks the stem; the model's config.json names it
        assert differences["model.stem"] == (1, 2)


def test_chapter_06_trains_with_its_configs_defaults_in_full_mode():
    """Chapter 09 calls a diffusion model a stand-in when it was trained with other than
    the defaults of chapter 06's configs: those must be the settings of chapter 06's cell."""
    text = (Path(__file__).parents[1] / "chapters" / "06_diffusion.md").read_text()
    cell = re.search(r"```\{code-cell\} ipython3\n(config = UNetConfig\(.*?)```", text, re.S)
    assert cell, "chapter 06's hyperparameter cell not found"
    namespace = {
        "dataclasses": dataclasses,
        "UNetConfig": UNetConfig,
        "DiffusionTrainConfig": DiffusionTrainConfig,
        "SamplerEvalConfig": SamplerEvalConfig,
        "budget": lambda full, smoke: full,
        "override": lambda *configs: configs,
        "retrain_requested": lambda: False,
        "print": lambda *args, **kwargs: None,
    }
    exec(cell.group(1), namespace)
    cell_settings = {
        "model": namespace["config"],
        "train": namespace["train_config"],
        "eval": namespace["eval_config"],
    }
    assert plain(cell_settings) == plain(DIFFUSION_RUN)
