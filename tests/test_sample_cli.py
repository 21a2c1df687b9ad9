"""python -m book_utils.sample: lists the models, draws reproducible samples, feeds the metrics."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from book_utils import sample
from book_utils.sample import (
    MODELS,
    MissingCheckpointError,
    ModelEntry,
    UnknownModelError,
    available_models,
    checkpoint_path,
    draw_samples,
    load_sampler,
    main,
)

ROOT = Path(__file__).resolve().parent.parent
WITH_CHECKPOINT = [name for name in MODELS if checkpoint_path(name).is_file()]
NUM_SAMPLES = 500


def run_cli(*args: str, module: str = "book_utils.sample") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300
    )


def test_the_registry_holds_the_book_models():
    assert available_models()[:2] == ["mlp_gan", "dcgan"]
    assert checkpoint_path("dcgan") == ROOT / "book_utils" / "checkpoints" / "dcgan.pt"


def test_help_lists_every_model():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "MODEL --n N --out FILE" in " ".join(result.stdout.split())
    for name, entry in MODELS.items():
        assert name in result.stdout and entry.checkpoint in result.stdout


def test_an_unknown_model_gets_an_error_listing_the_valid_ones(tmp_path):
    result = run_cli("vae_gan", "--n", "10", "--out", str(tmp_path / "x.npy"))
    assert result.returncode == 2
    assert "unknown model 'vae_gan'" in result.stderr
    assert all(name in result.stderr for name in available_models())
    with pytest.raises(UnknownModelError, match="mlp_gan, dcgan"):
        load_sampler("vae_gan")


def test_bad_arguments_are_refused(tmp_path):
    for args in (["--n", "0", "--out", "x.npy"], ["--n", "5", "--out", "x.jpg"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["mlp_gan", *args])
        assert exit_info.value.code == 2
    with pytest.raises(ValueError, match="positive"):
        draw_samples("mlp_gan", 0)


@pytest.mark.skipif(not WITH_CHECKPOINT, reason="no model checkpoint in book_utils/checkpoints")
@pytest.mark.parametrize("name", WITH_CHECKPOINT)
def test_samples_are_uint8_and_reproducible(name, tmp_path):
    paths = {}
    for label, seed in [("a", 0), ("b", 0), ("c", 1)]:
        paths[label] = tmp_path / f"{label}.npy"
        args = [name, "--n", str(NUM_SAMPLES), "--out", str(paths[label]), "--seed", str(seed)]
        assert main(args) == 0
    a, b, c = (np.load(paths[label], allow_pickle=False) for label in "abc")
    assert a.dtype == np.uint8 and a.shape == (NUM_SAMPLES, 28, 28)
    assert np.array_equal(a, b), "the same seed gave different samples"
    assert not np.array_equal(a, c), "different seeds gave the same samples"
    assert 10 < a.mean() < 245 and a.std() > 20, "the samples look blank"


@pytest.mark.skipif(not WITH_CHECKPOINT, reason="no model checkpoint in book_utils/checkpoints")
def test_draw_samples_matches_the_sampler():
    name = WITH_CHECKPOINT[0]
    images = draw_samples(name, 300, seed=5, batch_size=300)
    x = load_sampler(name)(300, torch.Generator().manual_seed(5))  # (300, 1, 28, 28)
    assert x.shape == (300, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    expected = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1)
    assert torch.equal(images, expected)


@pytest.mark.skipif(not WITH_CHECKPOINT, reason="no model checkpoint in book_utils/checkpoints")
def test_png_output_is_a_png_grid(tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    assert main([WITH_CHECKPOINT[0], "--n", "64", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        assert image.mode == "L" and image.size == (8 * 30 + 2, 8 * 30 + 2)


@pytest.mark.skipif(not WITH_CHECKPOINT, reason="no model checkpoint in book_utils/checkpoints")
def test_the_npy_is_scored_by_the_metrics_tool(tmp_path):
    out = tmp_path / "samples.npy"
    made = run_cli(WITH_CHECKPOINT[0], "--n", str(NUM_SAMPLES), "--out", str(out))
    assert made.returncode == 0, made.stderr
    scored = run_cli(str(out), "--n-reference", "1000", module="book_utils.metrics")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["num_samples"] == NUM_SAMPLES and result["num_reference"] == 1000
    assert 0 < result["fid"] < 1000 and 1 <= result["class_score"] <= 10


def fake_sampler(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A stand-in model: uniform noise images in [-1, 1]."""
    return torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1


def load_fake(checkpoint: Path, device: torch.device) -> sample.Sampler:
    return fake_sampler


def test_a_new_model_is_one_registry_entry(monkeypatch, tmp_path):
    checkpoint = tmp_path / "fake.pt"
    checkpoint.write_bytes(b"")
    monkeypatch.setattr(sample, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setitem(MODELS, "fake", ModelEntry(load_fake, "fake.pt", "09_fake", "a test"))
    assert "fake" in available_models()
    images = draw_samples("fake", 250, seed=3, batch_size=100)
    assert images.dtype == torch.uint8 and images.shape == (250, 28, 28)
    assert torch.equal(images, draw_samples("fake", 250, seed=3, batch_size=100))


def test_a_missing_checkpoint_says_which_command_makes_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(MODELS, "ghost", ModelEntry(load_fake, "ghost.pt", "09_ghost", "none"))
    with pytest.raises(MissingCheckpointError, match="09_ghost.md"):
        load_sampler("ghost")
    with pytest.raises(SystemExit, match="BOOK_MODE=full BOOK_RETRAIN=1"):
        main(["ghost", "--n", "5", "--out", str(tmp_path / "x.npy")])
    assert not (tmp_path / "x.npy").exists()
