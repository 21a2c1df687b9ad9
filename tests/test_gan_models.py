"""The GANs of chapters 02 and 03: shapes, logits, sampling, one training step, DCGAN rules."""

import pytest
import torch
from torch import nn

from book_utils.losses import discriminator_loss, generator_loss_nonsaturating
from book_utils.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from book_utils.models.dcgan_rules import (
    discriminator_rule_violations,
    generator_rule_violations,
)
from book_utils.models.mlp_gan import MLPDiscriminator, MLPGANConfig, MLPGenerator

SMALL = {
    "mlp": (
        MLPGANConfig(latent_dim=8, g_hidden=(32, 64), d_hidden=(64, 32)),
        MLPGenerator,
        MLPDiscriminator,
    ),
    "dcgan": (
        DCGANConfig(latent_dim=8, g_channels=8, d_channels=8),
        DCGANGenerator,
        DCGANDiscriminator,
    ),
}


def build(kind: str, seed: int = 0) -> tuple[nn.Module, nn.Module, object]:
    config, g_cls, d_cls = SMALL[kind]
    torch.manual_seed(seed)
    return g_cls(config), d_cls(config), config


@pytest.mark.parametrize("kind", SMALL)
def test_generator_makes_images_in_signed_unit_range(kind):
    G, _, config = build(kind)
    z = 5 * torch.randn(6, config.latent_dim)  # large z pushes tanh to its limits
    x = G(z)
    assert x.shape == (6, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("kind", SMALL)
def test_discriminator_returns_one_unbounded_logit_per_image(kind):
    _, D, _ = build(kind)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    logits = D(x)
    assert logits.shape == (5,)
    # Logits, not probabilities: a sigmoid at the end would keep them in [0, 1]. Scaling up
    # the last layer must be able to push them far outside that range.
    last = [m for m in D.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    with torch.no_grad():
        last.weight.mul_(1000)
    D.eval()
    big = D(x)
    assert big.abs().max() > 1.5
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


@pytest.mark.parametrize("kind", SMALL)
def test_sample_is_reproducible_and_leaves_the_mode_alone(kind):
    G, _, _ = build(kind)
    G.train()
    a = G.sample(4, generator=torch.Generator().manual_seed(7))
    b = G.sample(4, generator=torch.Generator().manual_seed(7))
    c = G.sample(4, generator=torch.Generator().manual_seed(8))
    assert a.shape == (4, 1, 28, 28)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert G.training, "sample() restores train mode"
    assert not a.requires_grad


@pytest.mark.parametrize("kind", SMALL)
def test_one_training_step_changes_parameters_with_finite_losses(kind):
    G, D, config = build(kind)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g_before = [p.detach().clone() for p in G.parameters()]
    d_before = [p.detach().clone() for p in D.parameters()]
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    z = torch.randn(16, config.latent_dim)
    x_fake = G(z)
    loss_d = discriminator_loss(D(x), D(x_fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = generator_loss_nonsaturating(D(x_fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert all(not torch.equal(a, b) for a, b in zip(g_before, G.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(d_before, D.parameters(), strict=True))


def test_default_configs_build():
    for G, D, cfg in [
        (MLPGenerator(), MLPDiscriminator(), MLPGANConfig()),
        (DCGANGenerator(), DCGANDiscriminator(), DCGANConfig()),
    ]:
        x = G(torch.randn(2, cfg.latent_dim))
        assert x.shape == (2, 1, 28, 28)
        assert D(x).shape == (2,)


# --------------------------------------------------------------------------- DCGAN rules
def layers(module: nn.Module) -> list[nn.Module]:
    """The leaf modules in the order they run (both DCGAN nets are sequential)."""
    return [m for m in module.modules() if len(list(m.children())) == 0]


def test_dcgan_follows_the_design_rules():
    G, D, config = build("dcgan")
    assert generator_rule_violations(G, torch.randn(4, config.latent_dim)) == []
    assert discriminator_rule_violations(D, torch.rand(4, 1, 28, 28) * 2 - 1) == []
    # What the rules leave open, as the book's networks have it: two resampling steps each,
    # G's tanh straight after its last transposed convolution, its one Linear the projection.
    g, d = layers(G), layers(D)
    assert sum(isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2) for m in g) == 2
    assert sum(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in d) == 2
    assert isinstance(g[-1], nn.Tanh) and isinstance(g[-2], nn.ConvTranspose2d)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g) == 2
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d) == 1
    assert [m for m in g if isinstance(m, nn.Linear)] == [G.project]


def _broken(kind: str, change: str) -> nn.Module:
    """The small DCGAN's G or D with one rule broken."""
    G, D, _ = build("dcgan")
    net = G if kind == "G" else D
    layers_ = list(net.net)
    if change == "pooling":
        layers_.insert(2, nn.AvgPool2d(1))
    elif change == "relu":
        layers_ = [nn.ReLU() if isinstance(m, nn.LeakyReLU) else m for m in layers_]
    elif change == "leaky":
        layers_ = [nn.LeakyReLU(0.2) if isinstance(m, nn.ReLU) else m for m in layers_]
    elif change == "slope":
        layers_ = [nn.LeakyReLU(0.1) if isinstance(m, nn.LeakyReLU) else m for m in layers_]
    elif change == "no tanh":
        layers_ = layers_[:-1]
    elif change == "output norm":
        layers_.insert(-1, nn.BatchNorm2d(1))
    elif change == "input norm":
        layers_.insert(1, nn.BatchNorm2d(D.config.d_channels))
    elif change == "no norm":
        layers_ = [m for m in layers_ if not isinstance(m, nn.BatchNorm2d)]
    elif change == "hidden linear":
        width = G.project.out_features
        G.project = nn.Sequential(G.project, nn.ReLU(), nn.Linear(width, width))
    elif change == "linear head":
        layers_ += [nn.Flatten(), nn.Linear(1, 1)]
    net.net = nn.Sequential(*layers_)
    return net


@pytest.mark.parametrize(
    "kind, change, rule",
    [
        ("G", "pooling", "AvgPool2d"),
        ("G", "leaky", "LeakyReLU"),
        ("G", "no tanh", "rule 4"),
        ("G", "output norm", "output layer"),
        ("G", "no norm", "no nn.BatchNorm2d"),
        ("G", "hidden linear", "rule 5"),
        ("D", "pooling", "AvgPool2d"),
        ("D", "relu", "LeakyReLU(0.2)"),
        ("D", "slope", "LeakyReLU(0.2)"),
        ("D", "input norm", "input convolution"),
        ("D", "no norm", "no nn.BatchNorm2d"),
        ("D", "linear head", "nn.Linear"),
    ],
)
def test_dcgan_rule_checks_catch_each_broken_rule(kind, change, rule):
    net = _broken(kind, change)
    if kind == "G":
        found = generator_rule_violations(net, torch.randn(4, net.config.latent_dim))
    else:
        found = discriminator_rule_violations(net, torch.rand(4, 1, 28, 28) * 2 - 1)
    assert any(rule in text for text in found), found


def test_dcgan_weights_start_from_n_0_002():
    G = DCGANGenerator(DCGANConfig())
    w = torch.cat([m.weight.flatten() for m in layers(G) if isinstance(m, nn.ConvTranspose2d)])
    assert abs(w.mean().item()) < 2e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
    bn = torch.cat([m.weight.flatten() for m in layers(G) if isinstance(m, nn.BatchNorm2d)])
    assert bn.mean().item() == pytest.approx(1.0, abs=0.01)
