r"""Samplers for the reverse process, driven by any denoiser :math:`D(x, t) = \mathbb E[x_0 \mid x_t = x]`.

Every sampler works in the scaled variables :math:`\tilde x = x/\alpha_t` and :math:`\sigma_t = \beta_t/\alpha_t`,
where the probability-flow ODE takes the form of Karras et al. (2022, eq. 4 with their :math:`s = 1`)

.. math:: \frac{d\tilde x}{d\sigma} = \frac{\tilde x - D(\alpha_t \tilde x, t)}{\sigma},

except ``"euler"``, which is the textbook Euler step in :math:`t` of
:math:`dx = [f(x,t) - \tfrac12 g(t)^2 \nabla\log p_t(x)]\,dt`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ._checks import (
    check_batch,
    check_callable,
    check_choice,
    check_generator,
    check_positive,
    check_positive_int,
    check_tensor,
)
from ._random import randn
from .schedules import Schedule

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor], Tensor]
METHODS = ("euler", "heun", "ddim", "sde")


def time_grid(
    schedule: Schedule,
    steps: int,
    t_min: float = 1e-3,
    t_max: float = 1.0,
    rho: float = 7.0,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Decreasing grid ``(steps + 1,)`` from ``t_max`` to ``t_min``, then a last point at 0.

    The noise levels follow Karras et al. (2022, eq. 5):
    :math:`\sigma_i = (\sigma_{\max}^{1/\rho} + \tfrac{i}{n-1}(\sigma_{\min}^{1/\rho} - \sigma_{\max}^{1/\rho}))^\rho`,
    :math:`i = 0,\dots,n-1`, mapped back to times with ``schedule.t_from_sigma``; ``rho = 1`` is uniform
    in :math:`\sigma`, larger ``rho`` puts more steps at low noise. With ``steps = 1`` the grid is ``[t_max, 0]``.
    """
    steps = check_positive_int(steps, "steps")
    check_positive(rho, "rho")
    if not 0 < t_min <= t_max <= 1:
        raise ValueError(f"t_min and t_max must satisfy 0 < t_min <= t_max <= 1, got t_min={t_min}, t_max={t_max}")
    dtype = dtype or torch.float64
    if steps == 1:
        return torch.tensor([t_max, 0.0], dtype=dtype)
    s_max = schedule.sigma(torch.tensor(t_max, dtype=torch.float64))
    s_min = schedule.sigma(torch.tensor(t_min, dtype=torch.float64))
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sigmas = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    times = schedule.t_from_sigma(sigmas).clamp(t_min, t_max)
    times[0], times[-1] = t_max, t_min
    return torch.cat([times, times.new_zeros(1)]).to(dtype)


def sample_prior(
    schedule: Schedule,
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Noise to start from: :math:`x_1 = \beta_1 \varepsilon` (the :math:`\alpha_1 x_0` term is neglected)."""
    generator = check_generator(generator)
    eps = randn(shape, generator, dtype or torch.get_default_dtype(), device or "cpu")
    return schedule.beta(torch.tensor(1.0, dtype=eps.dtype, device=eps.device)) * eps


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    x_T: Tensor,
    schedule: Schedule,
    steps: int = 50,
    method: str = "heun",
    *,
    t_grid: Tensor | None = None,
    t_min: float = 1e-3,
    t_start: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
    progress: bool = False,
) -> Tensor:
    r"""Integrate the reverse process from ``t_grid[0]`` (default ``t_start``, 1 unless given) down to 0 and return
    :math:`x_0`; ``x_T`` is the state at that first time (noise, or an inverted image, :func:`invert`).

    ``denoiser(x, t)`` receives ``x`` of ``x_T``'s shape ``(B, *shape)`` and ``t`` as a ``(B,)`` tensor.

    Methods (one denoiser call per step, Heun two except on the last step):

    - ``"euler"``: :math:`x \leftarrow x + \Delta t\,[f(x,t) - \tfrac12 g^2 s(x,t)]`, :math:`s = (\alpha_t D - x)/\beta_t^2`.
    - ``"heun"``: Heun's second-order method on :math:`d\tilde x/d\sigma` (Karras et al. 2022, Algorithm 1).
    - ``"ddim"``: :math:`x_{t'} = \alpha_{t'} D + \beta_{t'}\hat\varepsilon`, :math:`\hat\varepsilon = (x - \alpha_t D)/\beta_t`
      (Song et al. 2021, η = 0) — Euler's method in :math:`(\tilde x, \sigma)`.
    - ``"sde"``: reverse SDE :math:`dx = [f - g^2 \nabla\log p_t]\,dt + g\,d\bar w` with the ancestral step
      :math:`\tilde x_{\sigma'} = D + \frac{\sigma'^2}{\sigma^2}(\tilde x - D) + \sigma'\sqrt{1 - \sigma'^2/\sigma^2}\,z`
      (DDPM posterior, i.e. DDIM with η = 1); needs ``generator`` for reproducibility.

    ``t_grid`` defaults to :func:`time_grid` ``(schedule, steps, t_min, t_start)``. ``callback`` gets
    ``{"x", "i", "t", "denoised"}`` before each step.
    """
    check_callable(denoiser, "denoiser")
    x = check_batch(x_T, "x_T")
    check_choice(method, "method", METHODS)
    generator = check_generator(generator)
    if method == "sde" and generator is None:
        raise ValueError("generator is required for method='sde' (a torch.Generator makes the run reproducible)")
    if t_grid is None:
        t_grid = time_grid(schedule, steps, t_min=min(t_min, t_start), t_max=t_start)
    t_grid = check_tensor(t_grid, "t_grid").to(dtype=x.dtype, device=x.device)
    if t_grid.dim() != 1 or len(t_grid) < 2 or bool((t_grid[1:] >= t_grid[:-1]).any()):
        raise ValueError("t_grid must be a strictly decreasing 1-D tensor with at least two points")
    if bool(t_grid[0] > 1) or bool(t_grid[-1] < 0):
        raise ValueError("t_grid must lie in [0, 1]")
    batch = x.shape[0]

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        return denoiser(x, t.expand(batch))

    for i in tqdm(range(len(t_grid) - 1), desc=f"sampling ({method})", disable=not progress):
        t, t_next = t_grid[i], t_grid[i + 1]
        alpha, beta = schedule.alpha(t), schedule.beta(t)
        alpha_next, beta_next = schedule.alpha(t_next), schedule.beta(t_next)
        D = denoise(x, t)
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "denoised": D})
        if method == "euler":
            score = (alpha * D - x) / beta**2
            velocity = schedule.drift(x, t) - 0.5 * schedule.diffusion(t) ** 2 * score
            x = x + (t_next - t) * velocity
        elif method == "ddim":
            eps_hat = (x - alpha * D) / beta
            x = alpha_next * D + beta_next * eps_hat
        elif method == "heun":
            sigma, sigma_next = beta / alpha, beta_next / alpha_next
            x_tilde = x / alpha
            d_cur = (x_tilde - D) / sigma
            x_tilde_next = x_tilde + (sigma_next - sigma) * d_cur  # Euler step.
            if sigma_next > 0:  # Apply 2nd order correction.
                D_next = denoise(alpha_next * x_tilde_next, t_next)
                d_next = (x_tilde_next - D_next) / sigma_next
                x_tilde_next = x_tilde + (sigma_next - sigma) * 0.5 * (d_cur + d_next)
            x = alpha_next * x_tilde_next
        else:  # "sde"
            ratio2 = (beta_next / alpha_next) ** 2 / (beta / alpha) ** 2
            z = randn(x.shape, generator, x.dtype, x.device)
            x_tilde = D + ratio2 * (x / alpha - D) + (beta_next / alpha_next) * (1 - ratio2).clamp_min(0).sqrt() * z
            x = alpha_next * x_tilde
    return x


@torch.no_grad()
def invert(
    denoiser: Denoiser,
    x0: Tensor,
    schedule: Schedule,
    t: float,
    steps: int = 50,
    method: str = "ddim",
    t_min: float = 1e-3,
    *,
    t_grid: Tensor | None = None,
) -> Tensor:
    r"""Map clean items ``x0`` ``(B, *shape)`` to :math:`x_t` by running the deterministic sampler forward in time:
    the grid of :func:`time_grid` ``(schedule, steps, t_min, t)`` read upwards, :math:`0 \to t_\min \to \dots \to t`.

    ``"ddim"`` (η = 0, the only method): the first step puts :math:`x_{t_\min} = \alpha_{t_\min}x_0` (noise
    :math:`\hat\varepsilon = 0` at the start), then each step
    :math:`x_{t'} = \alpha_{t'}D(x, s) + \beta_{t'}\hat\varepsilon`, :math:`\hat\varepsilon = (x - \alpha_s D(x, s))/\beta_s`,
    from :math:`s` to the next time :math:`t' > s` (the denoiser is evaluated at the start of the step, not at
    its end: the inversion's only approximation, which vanishes as ``steps`` grows). :func:`sample` with
    ``method="ddim"``, the same ``steps``, ``t_min`` and ``t_start=t`` runs the same grid back to :math:`x_0`.
    A given ``t_grid`` (decreasing from ``t`` to 0, as :func:`sample` takes it) replaces that grid; ``steps`` and
    ``t_min`` are then unused.
    """
    check_callable(denoiser, "denoiser")
    x0 = check_batch(x0, "x0")
    check_choice(method, "method", ("ddim",))
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
        raise ValueError(f"t must be a float in (0, 1], got {t!r}")
    if t_grid is None:
        t_grid = time_grid(schedule, steps, t_min=min(t_min, t), t_max=t)
    t_grid = check_tensor(t_grid, "t_grid")
    if t_grid.dim() != 1 or len(t_grid) < 2 or bool((t_grid[1:] >= t_grid[:-1]).any()):
        raise ValueError("t_grid must be a strictly decreasing 1-D tensor with at least two points")
    if abs(float(t_grid[0]) - t) > 1e-6 or float(t_grid[-1]) != 0:
        raise ValueError(f"t_grid must run from t = {t} down to 0, got [{float(t_grid[0])}, ..., {float(t_grid[-1])}]")
    grid = t_grid.to(dtype=x0.dtype, device=x0.device).flip(0)
    batch = x0.shape[0]
    x = schedule.alpha(grid[1]) * x0
    for s, s_next in zip(grid[1:-1], grid[2:]):
        D = denoiser(x, s.expand(batch))
        eps_hat = (x - schedule.alpha(s) * D) / schedule.beta(s)
        x = schedule.alpha(s_next) * D + schedule.beta(s_next) * eps_hat
    return x
