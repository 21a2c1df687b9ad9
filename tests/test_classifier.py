"""The committed MNIST classifier: it loads safely, classifies, and its features score."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from book_utils.checkpoint import CheckpointError, from_pretrained
from book_utils.data import load_mnist, to_signed_unit
from book_utils.metrics import FidProbe, extract, fid, load_classifier
from book_utils.metrics.features import CLASSIFIER_CHECKPOINT
from book_utils.metrics.train_classifier import random_shift
from book_utils.models.classifier import MnistClassifier


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_model_folder_is_small_and_half_precision():
    from safetensors.torch import load_file

    assert sum(f.stat().st_size for f in CLASSIFIER_CHECKPOINT.iterdir()) < 2_000_000
    assert (
        load_file(CLASSIFIER_CHECKPOINT / "model.safetensors")["fc.weight"].dtype == torch.float16
    )


def test_test_accuracy_is_at_least_99_3_percent(mnist, classifier):
    x = mnist.x_test.unsqueeze(1).float() / 127.5 - 1
    with torch.no_grad():
        predictions = torch.cat([classifier(b).argmax(1) for b in torch.split(x, 2000)])
    accuracy = (predictions == mnist.y_test).double().mean().item()
    assert accuracy >= 0.993
    saved = from_pretrained("mnist_classifier").record.figures
    assert accuracy == pytest.approx(saved["test_accuracy"], abs=2e-4)


def test_real_vs_real_fid_is_small_and_noise_is_large(mnist, classifier):
    feats_test, probs_test = extract(mnist.x_test[:5000], classifier)
    feats_train, _ = extract(mnist.x_train[:5000], classifier)
    noise = torch.randint(0, 256, (5000, 28, 28), dtype=torch.uint8)
    feats_noise, _ = extract(noise, classifier)
    floor = fid(feats_train, feats_test)
    assert floor < 0.05 * fid(feats_noise, feats_test)
    assert probs_test.shape == (5000, 10) and torch.allclose(probs_test.sum(1), torch.ones(5000))


class ReplayGenerator(torch.nn.Module):
    """A stand-in generator whose "samples" are fixed images in [-1, 1], chosen by noise."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = to_signed_unit(images)  # (N, 1, 28, 28)
        self.seeds: list[int] = []

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        self.seeds.append(generator.initial_seed())
        order = torch.randperm(len(self.images), generator=generator)[:n]
        return self.images[order]


def test_fid_probe_scores_a_generator_against_its_reference(mnist, classifier):
    n = 1000
    probe = FidProbe(mnist.x_test[:n], mnist.x_train[:n], classifier)
    feats_test, _ = extract(mnist.x_test[:n], classifier)
    feats_train, _ = extract(mnist.x_train[:n], classifier)
    assert probe.floor == pytest.approx(fid(feats_train, feats_test))
    # A "generator" that replays other real images scores near the floor, one that
    # replays noise far above it; the same noise (seed 0) is drawn at every call.
    real = ReplayGenerator(mnist.x_train[n : 2 * n])
    first, second = probe(real), probe(real)
    assert first == second and real.seeds == [0, 0]
    feats_real, _ = extract(mnist.x_train[n : 2 * n], classifier)
    assert first == pytest.approx(fid(feats_test, feats_real), rel=1e-6)
    noise = ReplayGenerator(torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8))
    assert probe(noise) > 20 * first


def test_loading_another_model_as_the_classifier_is_refused():
    with pytest.raises(CheckpointError, match="holds a DCGANGenerator, not a MnistClassifier"):
        load_classifier(CLASSIFIER_CHECKPOINT.parent / "dcgan")


def test_classifier_shapes_and_shift_augmentation():
    model = MnistClassifier().eval()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert model(x).shape == (4, 10) and model.features(x).shape == (4, 128)
    g = torch.Generator().manual_seed(0)
    image = -torch.ones(1, 1, 28, 28)
    image[..., 10:14, 10:14] = 1.0
    shifted = random_shift(image.repeat(8, 1, 1, 1), 2, g)
    assert shifted.shape == (8, 1, 28, 28)
    assert torch.all((shifted == 1).sum(dim=(1, 2, 3)) == 16)  # the square moves, intact
    assert shifted.min() == -1  # the padding is background


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "book_utils.metrics", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_metrics_cli_scores_real_images_well_and_noise_badly(tmp_path, mnist):
    real = tmp_path / "real.npy"
    np.save(real, mnist.x_train[:2000].numpy())
    result = _run_cli(str(real), "--n-reference", "2000")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert set(scores) >= {"fid", "kid", "class_score", "precision", "recall", "digit_histogram"}
    assert sum(scores["digit_histogram"]) == 2000 and min(scores["digit_histogram"]) > 100
    assert scores["class_score"] > 9 and scores["precision"] > 0.6 and scores["recall"] > 0.6

    noise = tmp_path / "noise.npy"
    np.save(noise, np.random.default_rng(0).integers(0, 256, (2000, 28, 28), dtype=np.uint8))
    bad = json.loads(_run_cli(str(noise), "--n-reference", "2000").stdout)
    assert bad["fid"] > 20 * scores["fid"] and bad["precision"] < 0.1


def test_metrics_cli_reads_a_folder_of_pngs(tmp_path, mnist):
    from PIL import Image

    for i in range(300):
        Image.fromarray(mnist.x_test[i].numpy()).save(tmp_path / f"{i:04d}.png")
    result = _run_cli(str(tmp_path), "--n-reference", "1000")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["num_samples"] == 300


def test_metrics_cli_rejects_bad_files_with_a_clear_message(tmp_path):
    floats = tmp_path / "floats.npy"
    np.save(floats, np.zeros((10, 28, 28), dtype=np.float32))
    result = _run_cli(str(floats))
    assert result.returncode != 0 and "expected uint8 images shaped (N, 28, 28)" in result.stderr
    result = _run_cli(str(tmp_path / "missing.npy"))
    assert result.returncode != 0 and "neither a .npy file nor a folder" in result.stderr
