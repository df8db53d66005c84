r"""Forward process: sample the marginal :math:`x_t = \alpha_t x_0 + \beta_t\varepsilon` or simulate the SDE."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ._checks import batch_view, check_batch, check_generator, check_positive_int, check_time
from ._random import randn
from .schedules import Schedule

Tensor = torch.Tensor


def perturb(
    x0: Tensor, t: float | Tensor, schedule: Schedule, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    r"""Sample the forward marginal :math:`x_t = \alpha_t x_0 + \beta_t \varepsilon`, :math:`\varepsilon\sim\mathcal N(0, I)`.

    ``x0``: ``(B, *shape)``; ``t``: float or ``(B,)`` in [0, 1]. Returns ``(x_t, eps)``, both shaped like ``x0``.
    """
    x0 = check_batch(x0, "x0")
    t = check_time(t, x0)
    generator = check_generator(generator)
    eps = randn(x0.shape, generator, x0.dtype, x0.device)
    alpha, beta = batch_view(schedule.alpha(t), x0), batch_view(schedule.beta(t), x0)
    return alpha * x0 + beta * eps, eps


def simulate_forward_sde(
    x0: Tensor,
    schedule: Schedule,
    steps: int,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> Tensor:
    r"""Euler–Maruyama path of :math:`dx = f(x,t)\,dt + g(t)\,dw` on the uniform grid :math:`t_i = i/\text{steps}`.

    :math:`x_{i+1} = x_i + f(x_i, t_i)\,\Delta t + g(t_i)\sqrt{\Delta t}\,z_i`. ``x0``: ``(B, *shape)``.
    Returns the path ``(steps + 1, B, *shape)``; ``path[i]`` is the state at ``t_i``.
    """
    x0 = check_batch(x0, "x0")
    steps = check_positive_int(steps, "steps")
    generator = check_generator(generator)
    times = torch.linspace(0, 1, steps + 1, dtype=x0.dtype, device=x0.device)
    dt = 1.0 / steps
    path = torch.empty((steps + 1, *x0.shape), dtype=x0.dtype, device=x0.device)
    path[0] = x = x0
    for i in tqdm(range(steps), desc="forward SDE", disable=not progress):
        t = times[i]
        z = randn(x.shape, generator, x.dtype, x.device)
        x = x + schedule.drift(x, t) * dt + schedule.diffusion(t) * dt**0.5 * z
        path[i + 1] = x
    return path
