"""Chapter 07's SNGAN: shapes, labels, spectral norm, projection, seeds, saving."""

import pytest
import torch

from book_utils.checkpoint import from_pretrained, save_pretrained
from book_utils.gan_step import hinge_gan_step
from book_utils.models import MODEL_CLASSES
from book_utils.models.sngan import SNGANConfig, SNGANDiscriminator, SNGANGenerator

SMALL = SNGANConfig(z_dim=8, width=4)
COND = SNGANConfig(z_dim=8, width=4, num_classes=10)


def build(config: SNGANConfig, seed: int = 0):
    torch.manual_seed(seed)
    return SNGANGenerator(config), SNGANDiscriminator(config)


@pytest.mark.parametrize("config", [SMALL, COND])
def test_shapes_and_pixel_range(config):
    G, D = build(config)
    y = torch.arange(6) % 10 if config.num_classes else None
    x = G(5 * torch.randn(6, config.z_dim), y)
    assert x.shape == (6, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (6,)
    assert D.features(x).shape == (6, 4 * config.width)


def test_registered():
    assert MODEL_CLASSES["SNGANGenerator"] == (SNGANGenerator, SNGANConfig)
    assert MODEL_CLASSES["SNGANDiscriminator"] == (SNGANDiscriminator, SNGANConfig)


def test_bad_input_gives_clear_errors():
    G, D = build(SMALL)
    with pytest.raises(ValueError, match="z must be shaped"):
        G(torch.randn(3, 9))
    with pytest.raises(ValueError, match="x must be shaped"):
        D(torch.randn(3, 1, 32, 32))
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(3, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="positive whole number"):
        G.sample(0)
    Gc, Dc = build(COND)
    with pytest.raises(ValueError, match="pass labels"):
        Gc(torch.randn(3, 8))
    with pytest.raises(ValueError, match="pass labels"):
        Dc(torch.randn(3, 1, 28, 28))
    with pytest.raises(ValueError, match="0..9"):
        Gc.sample(2, labels=[3, 10])
    with pytest.raises(ValueError, match="shaped"):
        Dc(torch.randn(3, 1, 28, 28), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes"):
        SNGANConfig(num_classes=-1)
    with pytest.raises(ValueError, match="width"):
        SNGANConfig(width=0)
    with pytest.raises(ValueError, match="pooling"):
        SNGANConfig(pooling="max")


def test_mean_pooling_is_the_sum_over_the_49_positions_divided_by_49():
    _, D_sum = build(SMALL)
    _, D_mean = build(SNGANConfig(z_dim=8, width=4, pooling="mean"))
    D_mean.load_state_dict(D_sum.state_dict())  # same weights, other pooling
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    D_sum.eval(), D_mean.eval()
    assert torch.allclose(D_mean.features(x) * 49, D_sum.features(x), atol=1e-5)


@pytest.mark.parametrize("config", [SMALL, COND])
def test_same_seed_same_samples(config):
    G, _ = build(config)
    a = G.sample(5, torch.Generator().manual_seed(3))
    b = G.sample(5, torch.Generator().manual_seed(3))
    c = G.sample(5, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert G.training  # sample() restores the mode


def test_conditional_sample_uses_the_labels_it_is_given():
    G, _ = build(COND)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 8, generator=g)
    labels = torch.tensor([0, 1, 2, 3])
    x = G.sample(4, torch.Generator().manual_seed(0), labels=labels)
    G.eval()
    with torch.no_grad():
        assert torch.allclose(x, G(z, labels))
        # Different labels, same noise: different images (conditional batch norm at work
        # once the class scales differ from their initial value of 1).
        G.norms[0].scale.weight[1].mul_(3)
        assert not torch.allclose(G(z, torch.zeros(4, dtype=torch.long)), G(z, labels * 0 + 1))


def test_projection_discriminator_is_psi_plus_inner_product():
    _, D = build(COND)
    D.eval()
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 3, 3, 7, 9])
    with torch.no_grad():
        phi = D.features(x)
        expected = D.psi(phi).squeeze(1) + (D.embed(y) * phi).sum(1)
        assert torch.allclose(D(x, y), expected, atol=1e-5)


def test_spectral_norm_makes_each_layer_one_lipschitz():
    _, D = build(SNGANConfig(z_dim=8, width=4))
    x = torch.randn(8, 1, 28, 28)
    for _ in range(30):  # power iterations run on each training-mode forward pass
        D(x)
    for layer in [*D.convs, D.psi]:
        weight = layer.weight.detach().flatten(1)  # (out, in * k * k)
        assert torch.linalg.matrix_norm(weight, ord=2) == pytest.approx(1.0, abs=0.02)
    _, plain = build(SNGANConfig(z_dim=8, width=4, spectral_norm=False))
    assert not hasattr(plain.convs[0], "parametrizations")


def test_one_hinge_step_changes_both_networks():
    G, D = build(SMALL)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3)
    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    loss_d = torch.relu(1 - D(x)).mean() + torch.relu(1 + D(G(torch.randn(8, 8)).detach())).mean()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = -D(G(torch.randn(8, 8))).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters(), strict=True))


@pytest.mark.parametrize("config", [SMALL, COND])
def test_save_and_load_give_the_same_model(config, tmp_path):
    G, D = build(config)
    for model, name in [(G, "g"), (D, "d")]:
        model.eval()
        loaded = from_pretrained(save_pretrained(model, tmp_path / name))
        assert loaded.config == config
        assert type(loaded) is type(model)
    x = G.sample(4, torch.Generator().manual_seed(1))
    x_loaded = from_pretrained(tmp_path / "g").sample(4, torch.Generator().manual_seed(1))
    assert torch.allclose(x, x_loaded, atol=2e-2)  # weights saved in half precision


# ------------------------------------------------------------------ the committed models
# Chapter 07's CPU stand-ins: scored on 1,000 samples (seed 0) against the first 1,000 test
# images, the protocol of their records. FID_WHEN_MADE is the score of the stored (half-
# precision) weights; other BLAS libraries move it in the last digits only.
FID_WHEN_MADE = {"sngan": 143.95, "wgan_gp": 351.60}


@pytest.mark.parametrize("name", FID_WHEN_MADE)
def test_committed_model_loads_samples_and_keeps_its_score(name):
    from book_utils.checkpoint import CHECKPOINT_DIR
    from book_utils.data import load_mnist
    from book_utils.metrics import score_samples

    folder = CHECKPOINT_DIR / name
    assert sum(f.stat().st_size for f in folder.iterdir()) < 5_000_000
    G = from_pretrained(name, model_class=SNGANGenerator)
    record = G.record
    assert record.snapshot_steps[-1] == record.steps and record.seconds > 0
    assert len(record.scores["fid"]) == len(record.scores["fid_raw"]) >= 3
    samples = G.sample(1000, torch.Generator().manual_seed(0))  # (1000, 1, 28, 28)
    assert samples.shape == (1000, 1, 28, 28) and samples.abs().max() <= 1
    scores = score_samples(samples * 0.5 + 0.5, load_mnist().x_test[:1000])
    assert scores["fid"] == pytest.approx(FID_WHEN_MADE[name], rel=0.005)
    assert scores["fid"] == pytest.approx(record.figures["fid"], rel=0.05)


@pytest.mark.parametrize("config", [SMALL, COND], ids=["unconditional", "conditional"])
@pytest.mark.parametrize("r1_gamma", [0.0, 2.0])
def test_hinge_gan_step_is_the_hinge_update_written_by_hand(config, r1_gamma):
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 10 if config.num_classes else None
    cond = () if y is None else (y,)
    results = []
    for by_hand in (False, True):
        G, D = build(config)
        G.train()
        D.train()
        opt_g = torch.optim.SGD(G.parameters(), lr=0.1)
        opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
        if not by_hand:
            logs = hinge_gan_step(x, z, G, D, opt_g, opt_d, y=y, r1_gamma=r1_gamma)
        else:
            x_fake = G(z, *cond)
            x_r = x.clone().requires_grad_(True)
            real = D(x_r, *cond)
            loss_d = torch.relu(1 - real).mean() + torch.relu(1 + D(x_fake.detach(), *cond)).mean()
            (grad,) = torch.autograd.grad(real.sum(), x_r, create_graph=True)
            loss_d = loss_d + r1_gamma / 2 * grad.pow(2).flatten(1).sum(1).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = -D(x_fake, *cond).mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            logs = {"loss_d": loss_d}
        results.append((logs["loss_d"].item(), [p.detach().clone() for p in G.parameters()]))
    (loss_a, g_a), (loss_b, g_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g_a, g_b, strict=True))
