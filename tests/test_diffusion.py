"""Chapter 06: noise schedules, the forward process and its posterior, the parameterisations,
the U-Net, the samplers, and the trained models."""

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from book_utils.checkpoint import CHECKPOINT_DIR, from_pretrained, save_pretrained
from book_utils.diffusion import (
    NoiseSchedule,
    SamplerEvalConfig,
    cosine_betas,
    ddim_sample,
    ddim_timesteps,
    ddpm_loss,
    ddpm_sample,
    euler_sample,
    flow_bits_per_dim,
    flow_log_likelihood,
    flow_matching_loss,
    flow_path,
    flow_times,
    heun_sample,
    linear_betas,
    sample_times,
)
from book_utils.models.unet import (
    DDPMUNet,
    FlowUNet,
    GuidedFlowUNet,
    SelfAttention,
    UNet,
    UNetConfig,
    time_embedding,
)
from book_utils.sample import draw_samples

TINY = UNetConfig(channels=8, time_dim=16, dropout=0.0, num_timesteps=50, sample_steps=5)
# The network that works at 14 x 14 after folding 2 x 2 pixels into channels, with
# self-attention at 7 x 7.
TINY_STEM = UNetConfig(
    channels=8, channel_mult=(1, 2), stem=2, attention=True, time_dim=16, dropout=0.0
)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_schedule_identities(name):
    s = NoiseSchedule.named(name, 1000)
    assert s.num_timesteps == 1000 and len(s.alpha_bar) == 1001
    assert s.alpha_bar[0] == 1 and s.betas[0] == 0
    assert torch.allclose(s.alphas, 1 - s.betas)
    assert torch.allclose(s.alpha_bar[1:], torch.cumprod(1 - s.betas[1:], 0))
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all()  # strictly decreasing
    assert s.alpha_bar[-1] < 1e-4  # almost pure noise at t = T


def test_linear_schedule_is_ho_et_al_and_cosine_follows_its_formula():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    abar = torch.cumprod(1 - cosine_betas(1000), 0)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    f = f / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    assert torch.allclose(abar[:990], f[:990], rtol=1e-9)  # before the clip at beta = 0.999


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule.named("quadratic", 100)
    with pytest.raises(ValueError, match="positive integer"):
        NoiseSchedule.named("linear", 0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        NoiseSchedule(torch.tensor([0.1, 1.5]))


def test_closed_form_matches_iterating_the_forward_steps():
    s = NoiseSchedule.named("linear", 100)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.8, -0.5, 0.0], dtype=torch.float64)
    x = x0.expand(40_000, -1).clone()
    for t in range(1, 61):
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        x = s.alphas[t].sqrt() * x + s.betas[t].sqrt() * noise
    abar = s.alpha_bar[60]
    assert torch.allclose(x.mean(0), abar.sqrt() * x0, atol=4 / math.sqrt(40_000))
    assert torch.allclose(x.var(0), (1 - abar).expand(3), atol=4 * math.sqrt(2 / 40_000))


def test_posterior_is_the_conditional_of_the_joint_gaussian():
    s = NoiseSchedule.named("cosine", 1000)
    x0, x_t = torch.randn(5, 1, 28, 28), torch.randn(5, 1, 28, 28)
    t = torch.tensor([1, 2, 10, 500, 1000])
    mean, var = s.posterior(x0, x_t, t)
    abar, abar_prev = s.alpha_bar[t], s.alpha_bar[t - 1]
    cov = s.alphas[t].sqrt() * (1 - abar_prev)
    view = (-1, 1, 1, 1)
    expected_mean = abar_prev.sqrt().view(view) * x0 + (cov / (1 - abar)).view(view) * (
        x_t - abar.sqrt().view(view) * x0
    )
    expected_var = (1 - abar_prev) - cov**2 / (1 - abar)
    assert torch.allclose(mean, expected_mean.float(), atol=1e-5)
    assert torch.allclose(var.flatten(), expected_var.float(), atol=1e-6)
    assert var[0].item() == 0  # t = 1: x_0 is known exactly


def test_parameterisations_convert_into_each_other():
    s = NoiseSchedule.named("cosine", 1000)
    gen = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4, 1, 28, 28, generator=gen), torch.randn(4, 1, 28, 28, generator=gen)
    t = torch.tensor([3, 200, 700, 990])
    x_t = s.q_sample(x0, t, eps)
    assert torch.allclose(s.x0_from_eps(x_t, t, eps), x0, atol=1e-3)
    assert torch.allclose(s.eps_from_x0(x_t, t, x0), eps, atol=1e-4)
    assert torch.allclose(s.x0_from_velocity(x_t, t, s.velocity(x0, t, eps)), x0, atol=1e-5)


def test_unet_shapes_and_time_embedding():
    model = UNet(TINY)
    x, t = torch.randn(3, 1, 28, 28), torch.rand(3)
    assert model(x, t).shape == (3, 1, 28, 28)
    assert model(x, torch.tensor(0.5)).shape == (3, 1, 28, 28)  # one t for the batch
    emb = time_embedding(torch.tensor([0.0, 1.0]), 16)
    assert emb.shape == (2, 16) and emb[0, :8].abs().max() == 0 and (emb[0, 8:] == 1).all()


def test_the_stem_network_works_at_14_by_14_with_attention_at_7_by_7():
    model = UNet(TINY_STEM)
    sizes = []
    for module in [model.down[0], model.middle, model.attention, model.up[0]]:
        module.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[1:])))
    x, t = torch.randn(3, 1, 28, 28), torch.rand(3)
    assert model(x, t).shape == (3, 1, 28, 28)
    assert sizes == [(8, 14, 14), (16, 7, 7), (16, 7, 7), (8, 14, 14)]
    assert model.conv_in.in_channels == 4 and isinstance(model.attention, SelfAttention)


def test_more_blocks_per_level_keep_the_sizes_and_the_one_block_names():
    deeper = UNet(dataclasses.replace(TINY_STEM, num_blocks=3))
    x, t = torch.randn(2, 1, 28, 28), torch.rand(2)
    sizes = []
    for module in [*deeper.more_down[0], *deeper.more_middle, *deeper.more_up[0]]:
        module.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[1:])))
    assert deeper(x, t).shape == (2, 1, 28, 28)
    assert sizes == [(8, 14, 14)] * 2 + [(16, 7, 7)] * 2 + [(8, 14, 14)] * 2
    one = UNet(dataclasses.replace(TINY_STEM, num_blocks=1))  # the old weights and names
    assert set(one.state_dict()) < set(deeper.state_dict())
    assert not any(name.startswith("more_") for name in one.state_dict())
    with pytest.raises(ValueError, match="num_blocks"):
        UNet(dataclasses.replace(TINY_STEM, num_blocks=0))


def test_pixel_unshuffle_and_shuffle_are_inverse_and_lose_nothing():
    x = torch.randn(2, 1, 28, 28)
    folded = F.pixel_unshuffle(x, 2)  # (2, 4, 14, 14)
    assert folded.shape == (2, 4, 14, 14)
    assert torch.equal(folded[0, :, 0, 0], x[0, 0, :2, :2].flatten())  # a 2 x 2 block
    assert torch.equal(F.pixel_shuffle(folded, 2), x)


def test_sizes_that_do_not_halve_evenly_are_refused():
    with pytest.raises(ValueError, match="halve"):
        UNet(UNetConfig(channels=8, channel_mult=(1, 2, 2), stem=2))


def test_attention_starts_as_its_shortcut_and_mixes_positions():
    torch.manual_seed(0)
    attention = SelfAttention(16, head_dim=8)
    x = torch.randn(2, 16, 7, 7)
    assert torch.equal(attention(x), x)  # the output projection starts at zero
    torch.nn.init.normal_(attention.out.weight)
    y = x.clone()
    y[:, :, 0, 0] += 1.0  # change one position: every other position's output moves
    changed = (attention(y) - attention(x)).abs().amax(dim=1)  # (2, 7, 7)
    assert (changed[:, 6, 6] > 0).all()


def test_time_sampling_and_the_flow_matching_loss():
    torch.manual_seed(0)
    uniform, logit_normal = sample_times(100_000), sample_times(100_000, "logit_normal")
    assert 0 <= uniform.min() and uniform.max() < 1 and 0 < logit_normal.min()
    assert abs(uniform.std() - 12**-0.5) < 0.01  # U(0, 1)
    assert logit_normal.std() < 0.9 * uniform.std()  # more weight in the middle
    with pytest.raises(ValueError, match="logit_normal"):
        sample_times(3, "beta")
    model = GuidedFlowUNet(dataclasses.replace(TINY_STEM, num_classes=10))
    x, y = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8)
    torch.manual_seed(1)
    loss = flow_matching_loss(model, x, y, label_dropout=0.5)
    torch.manual_seed(1)  # the same draws by hand: t, z, then the labels dropped
    t, z = torch.rand(8), torch.randn_like(x)
    dropped = torch.where(torch.rand(8) < 0.5, 10, y)
    expected = F.mse_loss(model(flow_path(x, z, t), t, dropped), x - z)
    assert torch.allclose(loss, expected)


@pytest.mark.parametrize("config", [TINY, TINY_STEM], ids=["28x28", "stem"])
@pytest.mark.parametrize("kind", ["ddpm", "flow"])
def test_one_training_step_lowers_the_loss(kind, config):
    torch.manual_seed(0)
    model = (DDPMUNet if kind == "ddpm" else FlowUNet)(config)
    schedule = NoiseSchedule.named("cosine", TINY.num_timesteps)
    x = torch.rand(32, 1, 28, 28) * 2 - 1
    t_int = torch.randint(1, TINY.num_timesteps + 1, (32,))
    t_flow, noise = torch.rand(32), torch.randn_like(x)

    def loss() -> torch.Tensor:  # the same batch, times and noise every time
        if kind == "ddpm":
            return F.mse_loss(model(schedule.q_sample(x, t_int, noise), t_int / 50), noise)
        return F.mse_loss(model(flow_path(x, noise, t_flow), t_flow), x - noise)

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    after = loss()
    assert torch.isfinite(before) and after < before


def test_ddim_with_eta_one_and_every_step_is_ancestral_sampling():
    model = DDPMUNet(TINY).eval()
    schedule = model.schedule()
    a = ddpm_sample(model, schedule, 3, torch.Generator().manual_seed(0))
    b = ddim_sample(model, schedule, 3, 50, torch.Generator().manual_seed(0), eta=1.0)
    assert torch.allclose(a, b, atol=1e-4)


def test_ddim_step_mean_is_the_posterior_mean_for_eta_one():
    """One DDIM step with eta = 1 draws from N(mu_tilde(x_t, x0_hat), beta_tilde): its mean
    (the step without its noise) is the posterior mean, and its variance beta_tilde."""
    s = NoiseSchedule.named("linear", 1000)
    x0_hat, x_t, t = torch.rand(2, 1, 28, 28) * 2 - 1, torch.randn(2, 1, 28, 28), 400
    abar, abar_prev = s.alpha_bar[t], s.alpha_bar[t - 1]
    sigma2 = (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)
    eps_hat = s.eps_from_x0(x_t, torch.full((2,), t), x0_hat)
    ddim_mean = abar_prev.sqrt() * x0_hat + (1 - abar_prev - sigma2).sqrt() * eps_hat
    mean, var = s.posterior(x0_hat, x_t, torch.full((2,), t))
    assert torch.allclose(ddim_mean.float(), mean, atol=1e-5)
    assert torch.allclose(var.flatten().double(), sigma2.expand(2), rtol=1e-5)


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 4) == [1000, 750, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(10, -1, -1))
    with pytest.raises(ValueError, match="between 1 and T"):
        ddim_timesteps(10, 11)
    assert ddim_timesteps(10, [9, 4, 0]) == [9, 4, 0]  # a grid of times, as given
    for bad in ([11, 5, 0], [9, 4, 1], [4, 9, 0], [9, 9, 0], [9.5, 4, 0], [0]):
        with pytest.raises(ValueError, match="grid of times"):
            ddim_timesteps(10, bad)


def test_flow_times():
    assert flow_times(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert flow_times([0.1, 0.5, 1.0]) == [0.1, 0.5, 1.0]
    for bad in ([0.5, 0.2, 1.0], [-0.1, 1.0], [0.0, 0.9], [1.0]):
        with pytest.raises(ValueError, match="grid of times"):
            flow_times(bad)
    with pytest.raises(ValueError, match="positive whole number"):
        flow_times(0)


def test_the_samplers_on_a_grid_of_times():
    """The evenly spaced grid given as a list samples the same images as its count; an
    Euler step of a constant field moves x by the field times the interval; DDIM on a grid
    that starts below T starts its pure noise there."""
    flow, ddpm = FlowUNet(TINY).eval(), DDPMUNet(TINY).eval()
    schedule = ddpm.schedule()

    def seeded():
        return torch.Generator().manual_seed(0)

    by_count = euler_sample(flow, 2, 4, seeded())
    by_grid = euler_sample(flow, 2, [0.0, 0.25, 0.5, 0.75, 1.0], seeded())
    assert torch.allclose(by_count, by_grid, atol=1e-6)
    assert torch.equal(
        ddim_sample(ddpm, schedule, 2, 5, seeded()),
        ddim_sample(ddpm, schedule, 2, ddim_timesteps(50, 5), seeded()),
    )

    class Constant(torch.nn.Module):  # v(x, t) = 0.5 everywhere
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, t):
            return torch.full_like(x, 0.5)

    start = torch.randn((2, 1, 28, 28), generator=seeded())
    moved = euler_sample(Constant(), 2, [0.2, 0.3, 1.0], seeded())
    assert torch.allclose(moved, (start + 0.5 * 0.8).clamp(-1, 1), atol=1e-6)

    calls = []

    class Recorder(DDPMUNet):
        def forward(self, x, t):
            calls.append(round(t[0].item() * 50))
            return super().forward(x, t)

    ddim_sample(Recorder(TINY).eval(), schedule, 2, [30, 12, 0], seeded())
    assert calls == [30, 12]  # the network is asked at the grid's times, never at T


@pytest.mark.parametrize("config", [TINY, TINY_STEM], ids=["28x28", "stem"])
@pytest.mark.parametrize("model_class", [DDPMUNet, FlowUNet])
def test_same_seed_same_samples_on_the_cpu(model_class, config):
    torch.manual_seed(0)
    model = model_class(config)
    a = model.sample(4, torch.Generator().manual_seed(7), steps=3)
    b = model.sample(4, torch.Generator().manual_seed(7), steps=3)
    c = model.sample(4, torch.Generator().manual_seed(8), steps=3)
    assert a.shape == (4, 1, 28, 28) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1
    assert model.training  # sample() restores the mode
    with pytest.raises(ValueError, match="positive whole number"):
        model.sample(2, steps=0)


def test_trajectories_have_one_state_per_step():
    model = FlowUNet(TINY)
    path: list[torch.Tensor] = []
    euler_sample(model, 2, 6, torch.Generator().manual_seed(0), trajectory=path)
    assert len(path) == 6 and path[0].shape == (2, 1, 28, 28)
    path = []
    ddim_sample(DDPMUNet(TINY), NoiseSchedule.named("cosine", 50), 2, 7, trajectory=path)
    assert len(path) == 7


def test_a_saved_model_keeps_its_sampler(tmp_path):
    model = FlowUNet(TINY)
    save_pretrained(model, tmp_path / "flow")
    loaded = from_pretrained(tmp_path / "flow")
    assert type(loaded) is FlowUNet and loaded.config == TINY
    images = draw_samples(tmp_path / "flow", 3, steps=2)
    assert images.shape == (3, 28, 28) and images.dtype == torch.uint8


@pytest.mark.parametrize("name", ["ddpm", "flow"])
def test_the_book_checkpoints_load_and_sample(name):
    if not (CHECKPOINT_DIR / name).is_dir():
        pytest.skip(f"no {name} checkpoint yet")
    folder = CHECKPOINT_DIR / name
    assert sum(f.stat().st_size for f in folder.iterdir()) < 8_000_000  # a few MB at most
    model = from_pretrained(name)
    record = model.record
    assert record.steps > 0 and record.seconds > 0 and record.machine
    assert record.figures["num_eval"] > 0 and f"{model.config.sample_steps}" in str(
        record.hyperparameters
    )
    first = draw_samples(name, 4, seed=0, steps=3)
    assert torch.equal(first, draw_samples(name, 4, seed=0, steps=3))
    assert first.float().std() > 10  # not a blank image


def test_sample_refuses_steps_for_a_one_pass_model():
    with pytest.raises(ValueError, match="takes no steps"):
        draw_samples("mlp_gan", 2, steps=5)


def test_ddpm_loss_is_l_simple_and_min_snr_weights_each_image_by_hand():
    torch.manual_seed(0)
    model = DDPMUNet(TINY)
    schedule = NoiseSchedule.named("cosine", TINY.num_timesteps)
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    torch.manual_seed(3)
    plain = ddpm_loss(model, schedule, x)
    torch.manual_seed(3)
    weighted = ddpm_loss(model, schedule, x, min_snr=5.0)
    torch.manual_seed(3)  # the same draws by hand
    t = torch.randint(1, TINY.num_timesteps + 1, (16,))
    eps = torch.randn_like(x)
    error = ((model(schedule.q_sample(x, t, eps), t / 50) - eps) ** 2).flatten(1).mean(1)
    abar = schedule.alpha_bar[t]
    snr = abar / (1 - abar)
    assert torch.allclose(plain, error.mean())
    assert torch.allclose(weighted, (error * (snr.clamp(max=5) / snr).float()).mean())
    assert weighted < plain  # every weight is at most 1, and some are below


class LinearField(torch.nn.Module):
    """v(x, t) = A x: a flow whose density at t = 1 is known in closed form."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(a)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x @ self.a.T


def test_flow_log_likelihood_of_a_linear_field_matches_the_closed_form():
    torch.manual_seed(0)
    a = 0.3 * torch.randn(4, 4)
    model = LinearField(a)
    x = torch.randn(6, 4)
    # x(0) = exp(-A) x(1), and log p_1(x) = log N(exp(-A) x; 0, I) - trace(A)
    z = x @ torch.linalg.matrix_exp(-a).T
    expected = torch.distributions.Normal(0, 1).log_prob(z).sum(1) - torch.trace(a)
    exact = flow_log_likelihood(model, x, steps=200, exact_trace=True)
    assert torch.allclose(exact, expected, atol=1e-3)
    estimates = torch.stack(
        [
            flow_log_likelihood(model, x, steps=20, generator=torch.Generator().manual_seed(s))
            for s in range(300)
        ]
    )  # Hutchinson's estimate: unbiased, so its mean over probes approaches the exact one
    exact_20 = flow_log_likelihood(model, x, steps=20, exact_trace=True)
    assert (estimates.mean(0) - exact_20).abs().max() < 4 * estimates.std(0).max() / 300**0.5
    assert estimates.std(0).max() > 0  # the probes do vary


def test_flow_log_likelihood_on_a_grid_crowded_near_the_data():
    torch.manual_seed(0)
    a = 0.3 * torch.randn(4, 4)
    x = torch.randn(6, 4)
    z = x @ torch.linalg.matrix_exp(-a).T
    expected = torch.distributions.Normal(0, 1).log_prob(z).sum(1) - torch.trace(a)
    grid = [1 - (1 - k / 100) ** 3 for k in range(101)]
    on_grid = flow_log_likelihood(LinearField(a), x, grid, exact_trace=True)
    assert torch.allclose(on_grid, expected, atol=1e-3)
    with pytest.raises(ValueError, match="start at t = 0"):
        flow_log_likelihood(LinearField(a), x, [0.5, 1.0], exact_trace=True)


def test_flow_bits_per_dim_of_the_still_field_is_the_gaussian_bound():
    """v = 0 leaves s where it is: log p(s) = log N(s; 0, I), and the bound is
    (-log N(2v - 1) - D ln 2 + D ln 256) / (D ln 2) for the same draw of u."""
    from book_utils.models.realnvp import dequantise

    class Still(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x, t):
            return x * self.anchor  # zero, with a graph for the divergence

    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    bpd = flow_bits_per_dim(Still(), x, steps=4, generator=torch.Generator().manual_seed(1))
    s = 2 * dequantise(x, torch.Generator().manual_seed(1)) - 1  # the same u
    log_n = torch.distributions.Normal(0, 1).log_prob(s).flatten(1).sum(1)
    dims = 784
    expected = (-log_n - dims * math.log(2) + dims * math.log(256)) / (dims * math.log(2))
    assert torch.allclose(bpd, expected, atol=1e-4)
    with pytest.raises(ValueError, match="positive whole number"):
        flow_bits_per_dim(Still(), x, steps=0)


def test_flow_log_likelihood_runs_on_images_with_the_unet():
    torch.manual_seed(0)
    model = FlowUNet(TINY_STEM).eval()
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    log_p = flow_log_likelihood(model, x, steps=2, generator=torch.Generator().manual_seed(0))
    assert log_p.shape == (2,) and torch.isfinite(log_p).all()
    with pytest.raises(ValueError, match="positive whole number"):
        flow_log_likelihood(model, x, steps=0)


def test_heun_is_second_order_where_euler_is_first():
    # v(x, t) = a (1 + t) x: x(1) = x(0) exp(1.5 a), a field that changes with t too
    a = -1.5  # shrinks the noise, so that no sample is clipped to [-1, 1]
    anchor = torch.nn.Linear(1, 1)  # where the samplers look for the device

    class Field(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.anchor = anchor

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return a * (1 + t.view(-1, 1, 1, 1)) * x

    start = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    exact = start * math.exp(1.5 * a)  # the samplers draw the same start from seed 0

    def error(sampler, evaluations: int) -> float:
        out = sampler(Field(), 4, evaluations, torch.Generator().manual_seed(0))
        return (out - exact).abs().max().item()

    euler = [error(euler_sample, k) for k in (20, 40)]  # network calls
    heun = [error(heun_sample, k) for k in (20, 40)]
    assert heun[0] < euler[0] / 3 and heun[1] < euler[1] / 6  # at as many network calls
    assert euler[0] / euler[1] == pytest.approx(2, rel=0.15)  # first order: error ~ h
    assert heun[0] / heun[1] == pytest.approx(4, rel=0.15)  # second order: error ~ h^2
    with pytest.raises(ValueError, match="even"):
        heun_sample(Field(), 1, 5)


def test_sampler_scores_need_an_even_number_of_network_calls():
    """Heun's method makes two calls a step: an odd count would fail only after training."""
    assert SamplerEvalConfig(eval_steps=(2, 4)).eval_steps == (2, 4)
    for bad in [(5, 10, 25), (0,), (10, 21)]:
        with pytest.raises(ValueError, match="even number of network calls"):
            SamplerEvalConfig(eval_steps=bad)
