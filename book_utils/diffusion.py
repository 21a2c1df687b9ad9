"""Diffusion and flow matching (chapter 06): noise schedules, the forward process and its
posterior, the three parameterisations of the network's output, and the samplers.

Notation of Ho et al. (2020), with t = 1, ..., T and the arrays indexed by t (entry 0 is
t = 0, where nothing has been added: beta_0 = 0, abar_0 = 1):

    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I),          alpha_t = 1 - beta_t
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I),         abar_t = prod alpha_s
    q(x_{t-1} | x_t, x_0) = N(mu_t(x_t, x_0), beta_tilde_t I)       (:meth:`posterior`)

The network sees t as t / T in [0, 1]. Flow matching (rectified flow) uses the straight
path x_t = (1 - t) z + t x between noise z (t = 0) and data x (t = 1), t in [0, 1].
Every sampler draws its noise on the CPU with the given ``torch.Generator`` and moves it
to the network's device, so one seed gives the same noise on every device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


def linear_betas(num_timesteps: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """Ho et al.'s schedule for T = 1000: beta_t rising linearly from 1e-4 to 0.02.

    For another T the end points are scaled by 1000 / T, so that the total noise added,
    and abar_T, stay about the same. Returns (T,) float64."""
    scale = 1000 / num_timesteps
    return torch.linspace(scale * beta_1, scale * beta_T, num_timesteps, dtype=torch.float64)


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol and Dhariwal's schedule: abar_t = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s)
    * pi / 2), so abar falls slowly at both ends; beta_t = 1 - abar_t / abar_{t-1}, clipped
    at ``max_beta`` (abar_T is 0 without the clip). Returns (T,) float64."""
    t = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps  # (T + 1,)
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def _image(coef: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example coefficients (B,), float64 on the CPU, as float32 (B, 1, 1, 1) on like's
    device, to multiply images with. (The schedule's arithmetic stays in float64.)"""
    return coef.to(like.device, torch.float32).view(-1, *([1] * (like.dim() - 1)))


class NoiseSchedule:
    """beta_t, alpha_t and abar_t for t = 0, ..., T (float64, entry 0 for t = 0)."""

    def __init__(self, betas: torch.Tensor) -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or len(betas) < 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a non-empty 1-D tensor with every beta_t in (0, 1)")
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])  # (T + 1,)
        self.alphas = 1 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)  # abar_0 = 1

    @classmethod
    def named(cls, name: str, num_timesteps: int) -> NoiseSchedule:
        """The "linear" or "cosine" schedule with T = ``num_timesteps``."""
        makers = {"linear": linear_betas, "cosine": cosine_betas}
        if name not in makers:
            raise ValueError(f"unknown noise schedule {name!r}; use one of {sorted(makers)}")
        if int(num_timesteps) != num_timesteps or num_timesteps < 1:
            raise ValueError(f"num_timesteps must be a positive integer, got {num_timesteps}")
        return cls(makers[name](int(num_timesteps)))

    @property
    def num_timesteps(self) -> int:
        return len(self.betas) - 1

    def at(self, values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """values[t] for a batch of times t (B,) of any device: float64 (B,) on the CPU."""
        return values[t.cpu().long()]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps: a draw of q(x_t | x_0) in one step."""
        abar = self.at(self.alpha_bar, t)  # (B,)
        return _image(abar.sqrt(), x0) * x0 + _image((1 - abar).sqrt(), x0) * eps

    def posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (B, 1, 28, 28) and variance (B, 1, 1, 1) of q(x_{t-1} | x_t, x_0), t >= 1:

        mu = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0
             + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
        beta_tilde_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t."""
        abar, abar_prev = self.at(self.alpha_bar, t), self.at(self.alpha_bar, t - 1)
        beta, alpha = self.at(self.betas, t), self.at(self.alphas, t)
        coef_x0 = abar_prev.sqrt() * beta / (1 - abar)  # (B,)
        coef_xt = alpha.sqrt() * (1 - abar_prev) / (1 - abar)  # (B,)
        mean = _image(coef_x0, x0) * x0 + _image(coef_xt, x0) * x_t
        return mean, _image((1 - abar_prev) / (1 - abar) * beta, x0)

    # The three things a network can predict, and how each gives the others.
    def x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        abar = self.at(self.alpha_bar, t)
        return (x_t - _image((1 - abar).sqrt(), x_t) * eps) / _image(abar.sqrt(), x_t)

    def eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""
        abar = self.at(self.alpha_bar, t)
        return (x_t - _image(abar.sqrt(), x_t) * x0) / _image((1 - abar).sqrt(), x_t)

    def velocity(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 (Salimans and Ho, 2022)."""
        abar = self.at(self.alpha_bar, t)
        return _image(abar.sqrt(), x0) * eps - _image((1 - abar).sqrt(), x0) * x0

    def x0_from_velocity(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v."""
        abar = self.at(self.alpha_bar, t)
        return _image(abar.sqrt(), x_t) * x_t - _image((1 - abar).sqrt(), x_t) * v


def _noise(shape: tuple[int, ...], generator: torch.Generator | None, device) -> torch.Tensor:
    return torch.randn(shape, generator=generator).to(device)  # drawn on the CPU


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def ddpm_sample(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    n: int,
    generator: torch.Generator | None = None,
    trajectory: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Ancestral sampling (Ho et al., 2020): from x_T ~ N(0, I), for t = T, ..., 1, draw
    x_{t-1} ~ N(mu_t(x_t, x0_hat), beta_tilde_t I) with the network's guess x0_hat, clipped
    to the pixel range [-1, 1]. T network evaluations; appends every x_t to ``trajectory``."""
    device, T = _device(model), schedule.num_timesteps
    x = _noise((n, 1, 28, 28), generator, device)  # x_T
    for step in range(T, 0, -1):
        t = torch.full((n,), step, dtype=torch.long)
        eps_hat = model(x, t.to(device) / T)  # (n, 1, 28, 28)
        x0_hat = schedule.x0_from_eps(x, t, eps_hat).clamp(-1, 1)
        mean, variance = schedule.posterior(x0_hat, x, t)
        z = _noise(x.shape, generator, device) if step > 1 else torch.zeros_like(x)
        x = mean + variance.sqrt() * z  # x_{t-1}; no noise at the last step (variance 0)
        if trajectory is not None:
            trajectory.append(x.cpu())
    return x


def _is_grid(steps: object) -> bool:
    """A sampler's ``steps`` is a count, or a grid of times (a list, tuple or 1-D tensor)."""
    return isinstance(steps, Sequence) or (torch.is_tensor(steps) and steps.dim() == 1)


def ddim_timesteps(num_timesteps: int, steps: int | Sequence[int]) -> list[int]:
    """``steps`` times T = tau_S > ... > tau_1 >= 1, evenly spaced, then 0; or, given a
    sequence, those times themselves, checked: whole numbers, decreasing, the first at most
    T and the last 0."""
    if _is_grid(steps):
        taus = [int(tau) for tau in steps]
        if len(taus) < 2 or taus[-1] != 0 or taus[0] > num_timesteps or taus != list(steps):
            raise ValueError(
                f"a grid of times must be whole numbers from at most T = {num_timesteps} "
                f"down to 0, got {list(steps)}"
            )
        if any(a <= b for a, b in zip(taus[:-1], taus[1:], strict=True)):
            raise ValueError(f"a grid of times must decrease, got {taus}")
        return taus
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be between 1 and T = {num_timesteps}, got {steps}")
    taus = torch.linspace(num_timesteps, 0, steps + 1).round().long().tolist()
    return taus  # e.g. T = 1000, 4 steps: [1000, 750, 500, 250, 0]


def flow_times(steps: int | Sequence[float]) -> list[float]:
    """The flow samplers' grid: ``steps`` + 1 evenly spaced times 0, 1/steps, ..., 1; or,
    given a sequence, those times themselves, checked: increasing, in [0, 1], ending at 1."""
    if not _is_grid(steps):
        if int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a positive whole number, got {steps}")
        return [i / int(steps) for i in range(int(steps) + 1)]
    times = [float(t) for t in steps]
    if len(times) < 2 or times[0] < 0 or times[-1] != 1:
        raise ValueError(f"a grid of times must run from t >= 0 to 1, got {times}")
    if any(a >= b for a, b in zip(times[:-1], times[1:], strict=True)):
        raise ValueError(f"a grid of times must increase, got {times}")
    return times


@torch.no_grad()
def ddim_sample(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    n: int,
    steps: int | Sequence[int],
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    trajectory: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """DDIM (Song et al., 2021) on ``steps`` of the T times, from x_T ~ N(0, I):

        x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps_hat + sigma z,
        sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev).

    eta = 0 is deterministic; eta = 1 with all T steps is DDPM's ancestral sampler. x0_hat
    is clipped to [-1, 1] and eps_hat recomputed from it. Appends each x to ``trajectory``.
    ``steps`` may also be the grid of times itself (:func:`ddim_timesteps`); pure noise
    then stands for x at its first time, even if that is below T."""
    device, T = _device(model), schedule.num_timesteps
    taus = ddim_timesteps(T, steps)
    x = _noise((n, 1, 28, 28), generator, device)  # x_T (or x at the grid's first time)
    for now, prev in zip(taus[:-1], taus[1:], strict=True):
        t = torch.full((n,), now)
        eps_hat = model(x, t.to(device) / T)  # (n, 1, 28, 28)
        x0_hat = schedule.x0_from_eps(x, t, eps_hat).clamp(-1, 1)
        eps_hat = schedule.eps_from_x0(x, t, x0_hat)  # consistent with the clipped x0_hat
        abar, abar_prev = schedule.alpha_bar[now], schedule.alpha_bar[prev]  # float64
        sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
        direction = (1 - abar_prev - sigma**2).clamp(min=0).sqrt()  # of eps_hat
        x = float(abar_prev.sqrt()) * x0_hat + float(direction) * eps_hat
        if eta > 0 and prev > 0:
            x = x + float(sigma) * _noise(x.shape, generator, device)
        if trajectory is not None:
            trajectory.append(x.cpu())
    return x


def min_snr_weight(snr: torch.Tensor, gamma: float) -> torch.Tensor:
    """min(SNR, gamma) / SNR (Hang et al., 2023): 1 where SNR <= gamma, gamma / SNR above;
    all ones for gamma = 0, which leaves L_simple as it is."""
    if gamma <= 0:
        return torch.ones_like(snr)
    return snr.clamp(max=gamma) / snr


def ddpm_loss(
    model: torch.nn.Module, schedule: NoiseSchedule, x: torch.Tensor, min_snr: float = 0.0
) -> torch.Tensor:
    """L_simple = E_{t, x, eps} |eps - eps_theta(x_t, t)|^2 per pixel, t ~ U{1, ..., T}.

    With ``min_snr`` = gamma > 0, each image's error is weighted by min(SNR_t, gamma) / SNR_t,
    SNR_t = abar_t / (1 - abar_t) (Hang et al., 2023): the nearly clean steps, which change
    what a sample looks like little, count less."""
    T = schedule.num_timesteps
    t = torch.randint(1, T + 1, (len(x),))  # (B,) on the CPU, where the schedule is
    eps = torch.randn_like(x)  # (B, 1, 28, 28)
    x_t = schedule.q_sample(x, t, eps)
    error = ((model(x_t, t.to(x.device) / T) - eps) ** 2).flatten(1).mean(1)  # (B,)
    if min_snr > 0:
        abar = schedule.at(schedule.alpha_bar, t)
        snr = abar / (1 - abar)  # (B,) float64
        error = error * min_snr_weight(snr, min_snr).float().to(x.device)
    return error.mean()


def flow_path(x: torch.Tensor, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) z + t x: the straight line from noise z (t = 0) to data x (t = 1).
    Its velocity dx_t/dt = x - z is what the flow network learns to predict."""
    t = t.view(-1, *([1] * (x.dim() - 1)))  # (B, 1, 1, 1)
    return (1 - t) * z + t * x


def sample_times(n: int, how: str = "uniform", device=None) -> torch.Tensor:
    """n times in (0, 1) for flow-matching training: ``"uniform"``, or ``"logit_normal"``,
    sigmoid(u) with u ~ N(0, 1), which spends more of the training on the middle times,
    where the velocity is hardest to predict (Esser et al., 2024)."""
    if how == "uniform":
        return torch.rand(n, device=device)
    if how == "logit_normal":
        return torch.sigmoid(torch.randn(n, device=device))
    raise ValueError(f"time sampling {how!r}: use 'uniform' or 'logit_normal'")


def flow_matching_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    label_dropout: float = 0.0,
    time_sampling: str = "uniform",
) -> torch.Tensor:
    """E_{t, x, z} |(x - z) - v(x_t, t, y)|^2 per pixel, x_t = (1 - t) z + t x.

    With labels ``y`` (B,), each is replaced by the null label (``num_classes``) with
    probability ``label_dropout``, so that one network learns v(x_t, t, y) and v(x_t, t),
    as classifier-free guidance needs; without labels the network is unconditional."""
    t = sample_times(len(x), time_sampling, x.device)  # (B,)
    z = torch.randn_like(x)  # (B, 1, 28, 28)
    if y is not None:
        drop = torch.rand(len(y), device=y.device) < label_dropout
        y = torch.where(drop, model.config.num_classes, y)  # (B,): labels, some null
    return torch.mean((model(flow_path(x, z, t), t, y) - (x - z)) ** 2)


@torch.no_grad()
def euler_sample(
    model: torch.nn.Module,
    n: int,
    steps: int | Sequence[float],
    generator: torch.Generator | None = None,
    trajectory: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Solve dx/dt = v(x, t) from t = 0 (x ~ N(0, I)) to t = 1 with ``steps`` Euler steps
    x <- x + v(x, t) / steps; the result is clipped to [-1, 1]. ``steps`` may also be the
    grid of times itself (:func:`flow_times`), each step then as long as its interval.
    Appends each x to ``trajectory``."""
    device, times = _device(model), flow_times(steps)
    x = _noise((n, 1, 28, 28), generator, device)  # x_0, pure noise
    for now, later in zip(times[:-1], times[1:], strict=True):
        t = torch.full((n,), now, device=device)
        if not _is_grid(steps):
            x = x + model(x, t) / steps  # x_{t + 1/steps}
        else:
            x = x + (later - now) * model(x, t)  # x at the grid's next time
        if trajectory is not None:
            trajectory.append(x.cpu())
    return x.clamp(-1, 1)


@torch.no_grad()
def heun_sample(
    model: torch.nn.Module,
    n: int,
    evaluations: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Solve dx/dt = v(x, t) from t = 0 to 1 with Heun's method (second order) in
    ``evaluations`` / 2 steps of size h, each two network calls: a trial Euler step
    x' = x + h v(x, t), then x <- x + h (v(x, t) + v(x', t + h)) / 2. The result is
    clipped to [-1, 1]. ``evaluations`` is even, so that it compares with Euler's method
    at the same number of network calls."""
    if int(evaluations) != evaluations or evaluations < 2 or evaluations % 2:
        raise ValueError(f"evaluations must be an even whole number >= 2, got {evaluations}")
    device, steps = _device(model), evaluations // 2
    x = _noise((n, 1, 28, 28), generator, device)  # x_0, pure noise
    h = 1 / steps
    for i in range(steps):
        t = torch.full((n,), i * h, device=device)
        v = model(x, t)
        trial = x + h * v  # Euler's step
        x = x + h * (v + model(trial, t + h)) / 2  # the average of both ends' slopes
    return x.clamp(-1, 1)


def _divergence(v: torch.Tensor, x: torch.Tensor, probe: torch.Tensor | None) -> torch.Tensor:
    """div v = trace(dv/dx) per image (B,): exactly, one vector-Jacobian product per
    dimension, or, given a probe e (B, ...) of random signs, Hutchinson's unbiased estimate
    e^T (dv/dx) e from one product (FFJORD, Grathwohl et al. 2019)."""
    if probe is not None:
        (vjp,) = torch.autograd.grad(v, x, probe, create_graph=False)
        return (vjp * probe).flatten(1).sum(1)
    flat_v = v.flatten(1)
    trace = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for i in range(flat_v.shape[1]):  # row i of the Jacobian, its diagonal entry i
        (row,) = torch.autograd.grad(flat_v[:, i].sum(), x, retain_graph=True)
        trace = trace + row.flatten(1)[:, i]
    return trace


def flow_log_likelihood(
    model: torch.nn.Module,
    x: torch.Tensor,
    steps: int | Sequence[float] = 100,
    generator: torch.Generator | None = None,
    exact_trace: bool = False,
) -> torch.Tensor:
    """log p(x) in nats per image under a flow network's ODE dx/dt = v(x, t), for images x
    (B, ...) in the network's space: the instantaneous change of variables (Chen et al.,
    2018), integrated backwards from the data (t = 1) to the noise (t = 0),

        log p_1(x(1)) = log N(x(0); 0, I) - integral_0^1 div v(x(t), t) dt,

    with Heun's method in ``steps`` steps of -1/steps, or backwards along a grid of times
    (:func:`flow_times`; a grid that crowds its steps near t = 1, where the field of a
    model of sharp data changes fastest, needs fewer of them). The divergence is
    Hutchinson's estimate with Rademacher probes drawn from ``generator`` (the same probe
    within a step), unbiased for each image, or exact with ``exact_trace`` (slow: one
    backward pass per dimension)."""
    device, times = _device(model), flow_times(steps)
    if times[0] != 0:
        raise ValueError(f"the grid must start at t = 0, the noise, got {times[0]}")

    def field(x_t: torch.Tensor, t: float, probe) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x_t = x_t.detach().requires_grad_(True)
            v = model(x_t, torch.full((len(x_t),), t, device=device))
            return v.detach(), _divergence(v, x_t, probe).detach()

    x_t, integral = x.to(device).float(), torch.zeros(len(x), device=device)
    for t, earlier in zip(times[::-1][:-1], times[::-1][1:], strict=True):  # 1 -> 0
        h = t - earlier
        probe = None
        if not exact_trace:
            probe = (2 * torch.randint(0, 2, x_t.shape, generator=generator) - 1).float()
            probe = probe.to(device)
        v1, div1 = field(x_t, t, probe)
        x_pred = x_t - h * v1  # Euler's step backwards, then Heun's correction
        v2, div2 = field(x_pred, earlier, probe)
        x_t = x_t - h * (v1 + v2) / 2
        integral = integral + h * (div1 + div2) / 2
    from book_utils.models.realnvp import standard_normal_log_density  # log N(.; 0, I)

    return standard_normal_log_density(x_t) - integral


def flow_bits_per_dim(
    model: torch.nn.Module,
    x_bytes: torch.Tensor,
    steps: int = 100,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Bits per dimension of 8-bit images x_bytes (B, 1, 28, 28) under a flow network (B,):
    chapter 10's dequantised bound, as for its RealNVP. With v = (x + u) / 256, u uniform,
    and the network's pixels s = 2v - 1 (so log p(v) = log p(s) + D ln 2),

        -log2 P(x) / D <= E_u[-log p(v) + D ln 256] / (D ln 2),

    log p(s) from :func:`flow_log_likelihood` with Hutchinson's trace, in ``steps`` Heun
    steps on the grid t_k = 1 - (1 - k / steps)^3, which crowds them near the data (t = 1),
    where the field of a network trained on sharp images changes fastest. One draw of u
    and of the probes per image, from ``generator``: for each image an unbiased estimate
    of the bound, up to the solver's error."""
    from book_utils.models.realnvp import bits_per_dim, dequantise  # chapter 10's bound

    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive whole number, got {steps}")
    grid = [1 - (1 - k / steps) ** 3 for k in range(int(steps) + 1)]  # 0, ..., 1
    v = dequantise(x_bytes, generator)  # (B, 1, 28, 28) in [0, 1)
    log_p_s = flow_log_likelihood(model, 2 * v - 1, grid, generator)  # (B,) nats
    dims = v[0].numel()
    return bits_per_dim(log_p_s.cpu() + dims * math.log(2), dims)


def guided_velocity(
    model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, w: float
) -> torch.Tensor:
    """Classifier-free guidance (Ho and Salimans, 2022) of a conditional network:
    (1 + w) f(x, t, y) - w f(x, t, null), the null label being "no label". w = 0 is the
    conditional network alone; both halves run as one batch of 2B."""
    if w == 0:
        return model(x, t, y)
    null = torch.full_like(y, model.config.num_classes)  # (B,)
    both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))  # (2B, ...)
    conditional, unconditional = both.chunk(2)
    return (1 + w) * conditional - w * unconditional


@torch.no_grad()
def guided_euler_sample(
    model: torch.nn.Module,
    n: int,
    steps: int,
    labels: torch.Tensor,
    w: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`euler_sample` for a conditional flow network, with the guided velocity of
    the digits ``labels`` (n,) at scale ``w``; the result is clipped to [-1, 1]."""
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive whole number, got {steps}")
    device = _device(model)
    y = labels.to(device)
    x = _noise((n, 1, 28, 28), generator, device)  # x_0, pure noise
    for i in range(steps):
        t = torch.full((n,), i / steps, device=device)
        x = x + guided_velocity(model, x, t, y, w) / steps  # x_{t + 1/steps}
    return x.clamp(-1, 1)


@dataclass(frozen=True)
class DiffusionTrainConfig:
    num_steps: int = 30_000  # optimiser steps
    batch_size: int = 128  # images per step
    lr: float = 5e-4  # Adam's learning rate, after the warm-up
    warmup_steps: int = 500  # the learning rate rises linearly from 0 over these steps
    max_grad_norm: float = 1.0  # the gradient's norm is clipped to this
    ema_decay: float = 0.9995  # weight of the past in the running average, once warmed up
    min_snr: float = 5.0  # DDPM: min-SNR-gamma weighting of L_simple (0: none)
    time_sampling: str = "logit_normal"  # flow: "uniform" or "logit_normal" times
    label_dropout: float = 0.1  # flow: share of labels replaced by the null label
    seed: int = 0  # seeds the weights, the minibatch order and the noise


@dataclass(frozen=True)
class SamplerEvalConfig:
    num_eval: int = 10_000  # samples (and test images) per FID at the end of training
    num_probe: int = 2_000  # samples (and test images) per FID during training
    eval_steps: tuple[int, ...] = (10, 20, 50)  # network calls scored at the end (even)
    num_snapshots: int = 16  # sample grids and FIDs recorded during training

    def __post_init__(self) -> None:
        if any(calls < 2 or calls % 2 for calls in self.eval_steps):
            raise ValueError(
                f"eval_steps={self.eval_steps}: each must be an even number of network "
                "calls, since Heun's method makes two a step; e.g. (10, 20, 50)"
            )
