"""Chapter 10's RealNVP flow: invertibility, the log-determinant against autograd, units,
sampling and its checkpoint."""

import dataclasses
import math

import pytest
import torch

from book_utils.checkpoint import CHECKPOINT_DIR, from_pretrained
from book_utils.data import load_mnist
from book_utils.models.realnvp import (
    AffineCoupling,
    RealNVP,
    RealNVPConfig,
    Squeeze,
    bits_per_dim,
    checkerboard,
    dequantise,
)

SMALL = RealNVPConfig(hidden=8, num_blocks=1, num_scales=3)


def perturbed(config: RealNVPConfig, scale: float = 0.05) -> RealNVP:
    """A flow whose weights are not the identity's (a fresh flow's couplings are)."""
    torch.manual_seed(0)
    flow = RealNVP(config)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("num_scales", [1, 2, 3])
def test_round_trip(num_scales):
    flow = perturbed(dataclasses.replace(SMALL, num_scales=num_scales))
    v = dequantise(
        torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8), torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        z, log_det = flow(v)
        assert z.shape == (4, 784) and log_det.shape == (4,)
        assert (flow.inverse(z) - v).abs().max() < 1e-4


@pytest.mark.parametrize("num_scales", [1, 2, 3])
def test_log_det_matches_autograd(num_scales):
    config = dataclasses.replace(SMALL, num_scales=num_scales, image_size=8)
    flow = perturbed(config, 0.1).double()
    v = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jacobian = torch.autograd.functional.jacobian(
        lambda flat: flow(flat.view(1, 1, 8, 8))[0][0], v.flatten()
    )
    _, expected = torch.linalg.slogdet(jacobian)
    assert flow(v)[1].item() == pytest.approx(expected.item(), abs=1e-8)


def test_coupling_keeps_the_masked_pixels_and_inverts():
    torch.manual_seed(0)
    layer = AffineCoupling("checkerboard", 2, 6, 0, hidden=8, num_blocks=1)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
        x = torch.randn(3, 2, 6, 6)
        y, _ = layer(x)
        kept = checkerboard(6, 0).bool().expand(3, 2, 6, 6)
        assert torch.equal(y[kept], x[kept]) and not torch.allclose(y, x)
        assert torch.allclose(layer.inverse(y), x, atol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        AffineCoupling("diagonal", 2, 6, 0, 8, 1)


def test_squeeze_is_a_permutation():
    x = torch.arange(32.0).view(1, 2, 4, 4)
    y, log_det = Squeeze()(x)
    assert y.shape == (1, 8, 2, 2) and log_det.item() == 0
    assert y[0, 0].flatten().tolist() == [0.0, 2.0, 8.0, 10.0]  # top-left of each block
    assert torch.equal(Squeeze().inverse(y), x)


def test_units_and_dequantisation():
    assert bits_per_dim(torch.zeros(2)).tolist() == pytest.approx([8.0, 8.0])  # uniform
    assert bits_per_dim(torch.tensor([0.0]), num_dims=64).item() == pytest.approx(8.0)
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    v = dequantise(x, torch.Generator().manual_seed(0))
    assert torch.equal((v * 256).floor().to(torch.uint8), x)  # each pixel in its cube
    with pytest.raises(TypeError, match="uint8"):
        dequantise(x.float())


def test_errors_and_same_seed_same_samples():
    flow = perturbed(SMALL)
    a = flow.sample(3, torch.Generator().manual_seed(2))
    assert torch.equal(a, flow.sample(3, torch.Generator().manual_seed(2)))
    assert a.shape == (3, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    with pytest.raises(ValueError, match="expects images"):
        flow(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="z must be"):
        flow.inverse(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="cannot be halved"):
        RealNVP(RealNVPConfig(image_size=14, num_scales=3))
    with pytest.raises(ValueError, match="alpha"):
        RealNVP(RealNVPConfig(alpha=0.5))


def test_one_training_step_changes_the_parameters():
    flow = RealNVP(SMALL)
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    before = [p.detach().clone() for p in flow.parameters()]
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    loss = bits_per_dim(flow.log_prob(dequantise(x))).mean()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, flow.parameters(), strict=True))


@pytest.mark.skipif(not (CHECKPOINT_DIR / "realnvp").is_dir(), reason="no checkpoint")
def test_checkpoint_scores_its_recorded_bits_per_dim():
    flow = from_pretrained("realnvp", model_class=RealNVP)
    x = load_mnist().x_test.unsqueeze(1)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:300]
    with torch.no_grad():
        bpd = bits_per_dim(flow.log_prob(dequantise(x[idx], torch.Generator().manual_seed(1))))
    se = bpd.std().item() / math.sqrt(len(bpd))
    figures = flow.record.figures
    assert figures["test_nll_images"] == 10_000
    assert abs(bpd.mean().item() - figures["test_bpd"]) < 4 * se + 0.01
    assert figures["test_bpd"] < 8  # better than uniform over the 256 levels
    folder = CHECKPOINT_DIR / "realnvp"
    assert sum(f.stat().st_size for f in folder.iterdir()) < 5_000_000


RICH = dataclasses.replace(
    SMALL, num_scales=2, actnorm=True, full_res_couplings=2, dequantisation="variational"
)


def test_actnorm_starts_from_its_first_minibatch_and_inverts():
    from book_utils.models.realnvp import ActNorm

    layer = ActNorm(3)
    x = 5 + 2 * torch.randn(64, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    y, log_det = layer(x)
    assert y.mean((0, 2, 3)).abs().max() < 1e-5 and (y.std((0, 2, 3)) - 1).abs().max() < 1e-4
    assert log_det.shape == (64,) and log_det[0].item() == pytest.approx(
        -3 * 16 * math.log(2), abs=0.5
    )
    with torch.no_grad():
        again, _ = layer(x + 1)  # initialised once: the second minibatch does not reset it
    assert torch.allclose(again, y + torch.exp(layer.log_scale), atol=1e-5)
    assert torch.allclose(layer.inverse(y), x, atol=1e-5)
    state = layer.state_dict()
    assert bool(state["initialised"]), "a saved ActNorm is loaded as initialised"


def test_the_rich_flow_inverts_and_its_log_det_matches_autograd():
    flow = perturbed(dataclasses.replace(RICH, image_size=8), 0.1).double()
    v = torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z, _ = flow(v)  # (in training mode: ActNorm sets itself here)
    assert (flow.inverse(z) - v).abs().max() < 1e-8
    jacobian = torch.autograd.functional.jacobian(
        lambda flat: flow(flat.view(1, 1, 8, 8))[0][0], v[:1].flatten()
    )
    _, expected = torch.linalg.slogdet(jacobian)
    assert flow(v[:1])[1].item() == pytest.approx(expected.item(), abs=1e-8)


def test_the_variational_dequantiser_is_a_density_on_the_unit_cube():
    flow = perturbed(dataclasses.replace(RICH, image_size=4), 0.3).double()
    deq = flow.dequantiser
    c = torch.rand(1, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    e = torch.randn(1, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    u, log_det = deq.transform(e, c)
    assert 0 < u.min() and u.max() < 1
    jacobian = torch.autograd.functional.jacobian(
        lambda flat: deq.transform(flat.view(1, 1, 4, 4), c)[0].flatten(), e.flatten()
    )
    assert log_det.item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), abs=1e-8)
    x = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    v, log_q = flow.float().dequantise(x, torch.Generator().manual_seed(0))
    u = v * 256 - x
    assert u.min() > -1e-4 and u.max() < 1 + 1e-4, "u stays inside each pixel's bin"
    assert log_q.shape == (3,) and flow.log_likelihood_bound(x).shape == (3,)


def test_uniform_dequantisation_adds_nothing_to_the_bound():
    flow = perturbed(SMALL)
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    bound = flow.log_likelihood_bound(x, torch.Generator().manual_seed(0))
    plain = flow.log_prob(dequantise(x, torch.Generator().manual_seed(0)))
    assert torch.allclose(bound, plain)
    with pytest.raises(ValueError, match="dequantisation"):
        RealNVPConfig(dequantisation="learned")
