"""The VAE model folders of chapter 04 load, generate and keep their likelihood.

Each record stores the test bound its chapter run measured right after training:
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

from book_utils.checkpoint import CHECKPOINT_DIR, CheckpointError, from_pretrained
from book_utils.data import binarize, load_mnist, to_unit
from book_utils.metrics.likelihood import estimate_log_likelihood
from book_utils.models.vae import VAE, VAEConfig

MAIN = VAEConfig(latent_dim=32, hidden=(512, 512))
SMALL = VAEConfig(latent_dim=16, hidden=(256, 256))
EVALUATED = {  # models whose chapter run stored a test bound
    "vae": MAIN,
    "vae_2d": VAEConfig(latent_dim=2, hidden=(512, 256)),
    "vae_beta1": SMALL,
    "vae_iwae": SMALL,
}
SWEEP = ["vae_beta0p5", "vae_beta1", "vae_beta2", "vae_beta4", "vae_beta8"]
NUM_IMAGES, NUM_SAMPLES = 300, 200
MAX_FOLDER_BYTES = 5_000_000


@pytest.fixture(scope="module")
def x_test_subset() -> torch.Tensor:
    """Chapter 04's binary test set (the same seed), then a random subset of it."""
    x = binarize(to_unit(load_mnist().x_test), generator=torch.Generator().manual_seed(2015))
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:NUM_IMAGES]
    return x[idx]


@pytest.mark.parametrize("name", list(EVALUATED) + SWEEP)
def test_each_folder_holds_the_config_it_was_trained_with(name):
    vae = from_pretrained(name, model_class=VAE)
    assert vae.config == EVALUATED.get(name, SMALL)


@pytest.mark.parametrize("name", EVALUATED)
def test_model_scores_its_stored_test_bound(name, x_test_subset):
    vae = from_pretrained(name, model_class=VAE)
    figures = vae.record.figures
    assert figures["test_ll_samples"] == 5000 and figures["test_ll_images"] == 10_000
    ll = estimate_log_likelihood(
        vae, x_test_subset, NUM_SAMPLES, generator=torch.Generator().manual_seed(0)
    )
    se = ll.std().item() / math.sqrt(len(ll))
    stored = figures["test_ll"]
    assert abs(ll.mean().item() - stored) < 4 * se + 1.0, (name, ll.mean().item(), stored, se)


def test_main_vae_meets_the_likelihood_target():
    assert -from_pretrained("vae").record.figures["test_ll"] <= 89.0  # nats, chapter 04's target


def test_iwae_training_beats_the_elbo_at_equal_budget():
    elbo, iwae = from_pretrained("vae_beta1").record, from_pretrained("vae_iwae").record
    assert elbo.steps == iwae.steps
    assert iwae.figures["test_ll"] > elbo.figures["test_ll"]


@pytest.mark.parametrize("name", SWEEP)
def test_sweep_models_load_and_decode(name):
    samples = from_pretrained(name).sample(16, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (16, 1, 28, 28) and torch.isfinite(samples).all()


@pytest.mark.parametrize("name", list(EVALUATED) + SWEEP)
def test_model_folders_are_small(name):
    assert sum(f.stat().st_size for f in (CHECKPOINT_DIR / name).iterdir()) < MAX_FOLDER_BYTES


def test_a_folder_of_another_model_is_refused():
    with pytest.raises(CheckpointError, match="holds a DCGANGenerator, not a VAE"):
        from_pretrained("dcgan", model_class=VAE)
