"""Chapter 10's gated PixelCNN: causal masks, shapes, units, sampling and its checkpoint."""

import math

import pytest
import torch

from book_utils.checkpoint import CHECKPOINT_DIR, from_pretrained
from book_utils.data import binarize, load_mnist, to_unit
from book_utils.models.pixelcnn import (
    MaskedConv2d,
    PixelCNN,
    PixelCNNConfig,
    bits_per_pixel,
    horizontal_mask,
    vertical_mask,
)

SMALL = PixelCNNConfig(channels=8, num_layers=3, kernel_size=3)


@pytest.fixture
def model() -> PixelCNN:
    torch.manual_seed(0)
    net = PixelCNN(SMALL)
    with torch.no_grad():  # a random, not a freshly initialised, head
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def test_masks():
    assert vertical_mask(3, False).tolist() == [[1, 1, 1], [0, 0, 0], [0, 0, 0]]
    assert vertical_mask(3, True).tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    assert horizontal_mask(5, False).tolist() == [[1, 1, 0, 0, 0]]
    assert horizontal_mask(5, True).tolist() == [[1, 1, 1, 0, 0]]


@pytest.mark.parametrize("pixel", [0, 1, 27, 28, 29, 14 * 28 + 14, 783])
def test_changing_a_pixel_changes_no_output_at_or_before_it(model, pixel):
    x = binarize(torch.full((1, 1, 28, 28), 0.5), generator=torch.Generator().manual_seed(1))
    flipped = x.clone()
    flipped.view(-1)[pixel] = 1 - flipped.view(-1)[pixel]
    with torch.no_grad():
        change = (model(flipped) - model(x)).abs().view(-1)
    assert change[: pixel + 1].max() == 0  # outputs at and before the pixel: untouched
    if pixel < 783:
        assert change[pixel + 1 :].max() > 0  # the next pixels do see it


def test_no_blind_spot_within_the_receptive_field(model):
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, 0, 14, 14], x)
    seen = grad[0, 0] != 0
    # 4 gated layers of 3 x 3: every pixel of the 4 rows above within 4 columns, and
    # the 4 pixels to the left in the row
    assert seen[10:14, 10:19].all() and seen[14, 10:14].all()
    assert not seen.view(-1)[14 * 28 + 14 :].any()


def test_shapes_units_and_errors(model):
    x = torch.zeros(3, 1, 28, 28)
    assert model(x).shape == (3, 1, 28, 28) and model.log_prob(x).shape == (3,)
    with torch.no_grad():
        for p in model.head[-1].parameters():
            p.zero_()  # every logit 0: a fair coin per pixel
    assert torch.allclose(model.log_prob(x), torch.full((3,), -784 * math.log(2)))
    assert bits_per_pixel(784 * math.log(2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expects images"):
        model(torch.zeros(3, 28, 28))
    with pytest.raises(ValueError, match="kernel_size"):
        PixelCNN(PixelCNNConfig(kernel_size=4))
    with pytest.raises(ValueError, match="at least 1"):
        model.sample(0)
    with pytest.raises(ValueError, match="at least 1"):
        model.sample(2, batch_size=0)
    masked = PixelCNN(model.config)  # a full masked kernel: the cached sampler would misread it
    k, c = model.config.kernel_size, model.config.channels
    masked.layers[0].vertical = MaskedConv2d(1, 2 * c, vertical_mask(k, False))
    with pytest.raises(TypeError, match="cached=False"):
        masked.sample(1)


def test_same_seed_same_samples(model):
    a = model.sample(2, torch.Generator().manual_seed(3))
    b = model.sample(2, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert a.shape == (2, 1, 28, 28)


def test_one_training_step_changes_the_parameters(model):
    x = binarize(torch.full((4, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = -model.log_prob(x).mean()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.skipif(not (CHECKPOINT_DIR / "pixelcnn").is_dir(), reason="no checkpoint")
def test_checkpoint_scores_its_recorded_test_nll():
    pixelcnn = from_pretrained("pixelcnn", model_class=PixelCNN)
    x = binarize(to_unit(load_mnist().x_test), generator=torch.Generator().manual_seed(2015))
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:300]
    with torch.no_grad():
        nll = -pixelcnn.log_prob(x[idx])
    se = nll.std().item() / math.sqrt(len(nll))
    figures = pixelcnn.record.figures
    assert figures["test_nll_images"] == 10_000
    assert abs(nll.mean().item() - figures["test_nll"]) < 4 * se + 0.5
    assert figures["test_nll"] < 543.4  # better than a fair coin per pixel
    folder = CHECKPOINT_DIR / "pixelcnn"
    assert sum(f.stat().st_size for f in folder.iterdir()) < 5_000_000


@pytest.mark.parametrize("kernel_size, num_layers", [(3, 1), (5, 3)])
def test_cached_sampling_draws_the_same_images_as_the_plain_sampler(kernel_size, num_layers):
    torch.manual_seed(0)
    config = PixelCNNConfig(channels=8, num_layers=num_layers, kernel_size=kernel_size)
    model = PixelCNN(config)
    for parameter in model.parameters():  # away from the start, so that pixels vary
        torch.nn.init.normal_(parameter, std=0.3)
    plain = model.sample(3, torch.Generator().manual_seed(5), cached=False)
    cached = model.sample(3, torch.Generator().manual_seed(5), cached=True)
    assert torch.equal(plain, cached) and 0.05 < plain.mean() < 0.95
    in_ones = model.sample(3, torch.Generator().manual_seed(5), batch_size=1)
    assert torch.equal(in_ones, cached)  # drawn one at a time: the same images
    with torch.no_grad():  # the last pixel's probability, from the whole network
        p = torch.sigmoid(model(cached)[:, 0, 27, 27])
    u = torch.rand(3, 784, generator=torch.Generator().manual_seed(5))[:, -1]
    assert torch.equal(cached[:, 0, 27, 27], (u < p).float())


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("include", [False, True])
def test_cropped_convolutions_equal_the_masked_ones(k, include):
    from book_utils.models.pixelcnn import MaskedConv2d, horizontal_conv, vertical_conv

    x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    for mask, cropped in [
        (vertical_mask(k, include), vertical_conv(3, 4, k, include)),
        (horizontal_mask(k, include), horizontal_conv(3, 4, k, include)),
    ]:
        masked = MaskedConv2d(3, 4, mask)
        rows, cols = cropped.weight.shape[2:]
        assert mask[:rows, :cols].all() and mask.sum() == rows * cols, "the mask's rectangle"
        with torch.no_grad():
            masked.weight.zero_()
            masked.weight[:, :, :rows, :cols] = cropped.weight
            masked.bias.copy_(cropped.bias)
            assert torch.allclose(cropped(x), masked(x), atol=1e-6)


def test_the_pixelcnn_benchmark_compares_equal_networks_and_writes_json(tmp_path, capsys):
    import importlib.util
    import json
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_pixelcnn.py"
    spec = importlib.util.spec_from_file_location("bench_pixelcnn", path)
    bench = sys.modules["bench_pixelcnn"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "pixelcnn.json"
    argv = ["--channels=4", "--layers=1", "--kernel=5", "--batch=4", "--steps=1"]
    bench.main([*argv, "--rounds=1", "--samples=2", f"--json={out}"])
    figures = json.loads(out.read_text())
    assert set(figures["seconds_per_step"]) == {"cropped", "masked"}
    assert figures["sampling_images_per_s"] > 0 and figures["config"]["kernel_size"] == 5
    assert "same logits" in capsys.readouterr().out
