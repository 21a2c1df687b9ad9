"""python -m book_utils.sample: lists the models, draws reproducible samples, feeds the metrics."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from book_utils.checkpoint import CHECKPOINT_DIR, from_pretrained, save_pretrained
from book_utils.data import from_signed_unit
from book_utils.models.dcgan import DCGANConfig, DCGANGenerator
from book_utils.sample import BOOK_MODELS, available_models, draw_samples, main

ROOT = Path(__file__).resolve().parent.parent
NUM_SAMPLES = 500


def run_cli(*args: str, module: str = "book_utils.sample") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300
    )


def test_every_saved_generative_model_is_available():
    assert set(BOOK_MODELS) <= set(available_models())
    assert "mnist_classifier" not in available_models()  # a classifier draws no samples
    assert set(available_models()) >= {"dcgan_raw", "vae_2d", "vae_iwae", "vae_beta4"}


def test_help_lists_every_model():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for name in available_models():
        assert name in result.stdout


@pytest.mark.parametrize("name", ["vae_gan", "mnist_classifier"])
def test_an_unknown_or_non_generative_model_gets_a_clear_error(name, tmp_path):
    result = run_cli(name, "--n", "10", "--out", str(tmp_path / "x.npy"))
    assert result.returncode == 2
    assert name in result.stderr and (
        "No saved model" in result.stderr or "draws no" in result.stderr
    )
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("name", sorted(set(available_models()) - {"dcgan"}))
def test_every_model_samples_through_the_registry(name):
    images = draw_samples(name, 8, seed=0)
    assert images.dtype == torch.uint8 and images.shape == (8, 28, 28)


def test_the_name_alone_writes_a_grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("dcgan")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dcgan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_are_refused(tmp_path):
    for args in (["--n", "0", "--out", "x.npy"], ["--n", "5", "--out", "x.jpg"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["mlp_gan", *args])
        assert exit_info.value.code == 2
    with pytest.raises(ValueError, match="positive"):
        draw_samples("mlp_gan", 0)


@pytest.mark.parametrize("name", list(BOOK_MODELS))
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


def test_draw_samples_matches_the_model():
    images = draw_samples("dcgan", 300, seed=5, batch_size=300)
    x = from_pretrained("dcgan").sample(300, generator=torch.Generator().manual_seed(5))
    assert torch.equal(images, from_signed_unit(x))


def test_png_output_is_a_png_grid(tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    assert main(["dcgan", "--n", "64", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        assert image.mode == "L" and image.size == (8 * 30 + 2, 8 * 30 + 2)


def test_the_npy_is_scored_by_the_metrics_tool(tmp_path):
    out = tmp_path / "samples.npy"
    made = run_cli("dcgan", "--n", str(NUM_SAMPLES), "--out", str(out))
    assert made.returncode == 0, made.stderr
    scored = run_cli(str(out), "--n-reference", "1000", module="book_utils.metrics")
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["num_samples"] == NUM_SAMPLES and result["num_reference"] == 1000
    assert 0 < result["fid"] < 1000 and 1 <= result["class_score"] <= 10


def test_a_model_folder_of_ones_own_samples_by_its_path(tmp_path):
    torch.manual_seed(0)
    folder = save_pretrained(DCGANGenerator(DCGANConfig(g_channels=4)), tmp_path / "mine")
    images = draw_samples(str(folder), 250, seed=3, batch_size=100)
    assert images.dtype == torch.uint8 and images.shape == (250, 28, 28)
    assert torch.equal(images, draw_samples(str(folder), 250, seed=3, batch_size=100))
    assert CHECKPOINT_DIR not in folder.parents
