"""The committed VAE checkpoints of chapter 04 load, generate and keep their likelihood.

Each checkpoint stores the test bound its chapter run measured right after training:
-L_5000 averaged over all 10,000 binarised test images. Recomputing that here would take
many minutes on a CPU, so the test recomputes the bound on a random subset of 300 test
images with K = 200 importance samples, and asks it to agree with the stored figure
within four standard errors of the subset mean plus 1 nat (L_200 sits below L_5000 by a
fraction of a nat). That is loose enough for other BLAS libraries and devices, and far
tighter than the gaps between models (an untrained VAE scores about -540 nats).
"""

import math

import pytest
import torch

from book_utils.checkpoint import CheckpointMismatchError
from book_utils.data import binarize, load_mnist, to_unit
from book_utils.metrics.likelihood import estimate_log_likelihood
from book_utils.models.vae import VAE, VAEConfig
from book_utils.training import CHECKPOINT_DIR, load_finished

MAIN = VAEConfig(latent_dim=32, hidden=(512, 512))
SMALL = VAEConfig(latent_dim=16, hidden=(256, 256))
EVALUATED = {  # checkpoints whose chapter run stored a test bound
    "vae": MAIN,
    "vae_2d": VAEConfig(latent_dim=2, hidden=(512, 256)),
    "vae_beta1": SMALL,
    "vae_iwae": SMALL,
}
SWEEP = ["vae_beta0p5", "vae_beta1", "vae_beta2", "vae_beta4", "vae_beta8"]
NUM_IMAGES, NUM_SAMPLES = 300, 200
MAX_CHECKPOINT_BYTES = 5_000_000


@pytest.fixture(scope="module")
def x_test_subset() -> torch.Tensor:
    """Chapter 04's binary test set (the same seed), then a random subset of it."""
    x = binarize(to_unit(load_mnist().x_test), generator=torch.Generator().manual_seed(2015))
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:NUM_IMAGES]
    return x[idx]


def load(name: str, config: VAEConfig):
    vae = VAE(config)
    training = load_finished(
        CHECKPOINT_DIR / f"{name}.pt", model_name=name, config=config, modules={"vae": vae}
    )
    return vae.eval(), training


def test_the_main_config_is_the_default():
    assert VAEConfig() == MAIN  # the sampling tool builds the VAE from the defaults


@pytest.mark.parametrize("name", EVALUATED)
def test_checkpoint_scores_its_stored_test_bound(name, x_test_subset):
    vae, training = load(name, EVALUATED[name])
    stored = training.extra["test_ll"]
    assert training.extra["test_ll_samples"] == 5000 and training.extra["test_ll_images"] == 10_000
    ll = estimate_log_likelihood(
        vae, x_test_subset, NUM_SAMPLES, generator=torch.Generator().manual_seed(0)
    )
    se = ll.std().item() / math.sqrt(len(ll))
    assert abs(ll.mean().item() - stored) < 4 * se + 1.0, (name, ll.mean().item(), stored, se)


def test_main_vae_meets_the_likelihood_target():
    _, training = load("vae", MAIN)
    assert -training.extra["test_ll"] <= 89.0  # nats, the book's target for chapter 04


def test_iwae_training_beats_the_elbo_at_equal_budget():
    _, elbo = load("vae_beta1", SMALL)
    _, iwae = load("vae_iwae", SMALL)
    assert elbo.step == iwae.step
    assert iwae.extra["test_ll"] > elbo.extra["test_ll"]


@pytest.mark.parametrize("name", SWEEP)
def test_sweep_checkpoints_load_and_decode(name):
    vae, _ = load(name, SMALL)
    samples = vae.sample(16, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (16, 1, 28, 28) and torch.isfinite(samples).all()


@pytest.mark.parametrize("name", list(EVALUATED) + SWEEP)
def test_checkpoints_are_small(name):
    assert (CHECKPOINT_DIR / f"{name}.pt").stat().st_size < MAX_CHECKPOINT_BYTES


def test_a_checkpoint_of_another_model_is_refused():
    with pytest.raises(CheckpointMismatchError):
        load_finished(CHECKPOINT_DIR / "dcgan.pt", model_name="vae", config=MAIN, modules={})
    with pytest.raises(CheckpointMismatchError):
        load("vae", SMALL)  # the right name, another architecture
