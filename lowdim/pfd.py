r"""Probability flow distance (Zhang et al. 2025): how far apart two denoisers' noise-to-sample maps are.

For denoisers :math:`D_1, D_2` with PF-ODE maps :math:`\Phi_1, \Phi_2` (noise → sample, :func:`lowdim.sample`),

.. math:: \text{PFD}(D_1, D_2) = \Big(\mathbb E_{x_T}\,\|\Phi_1(x_T) - \Phi_2(x_T)\|^2\Big)^{1/2},

estimated from the same ``n`` noises for both maps. :mod:`lowdim.experiments.students` uses it to measure
generalization and memorization.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checks import check_callable, check_generator, check_positive_int
from .samplers import sample, sample_prior
from .schedules import Schedule

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor], Tensor]


def pf_distance(
    D1: Denoiser,
    D2: Denoiser,
    schedule: Schedule,
    shape: tuple[int, ...],
    n: int = 256,
    steps: int = 40,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> float:
    r"""RMS distance :math:`(\frac1n\sum_i\|\Phi_1(x_T^{(i)}) - \Phi_2(x_T^{(i)})\|^2)^{1/2}` between the Heun PF-ODE
    maps (``steps`` steps) of ``D1`` and ``D2`` from the same ``n`` noises :math:`x_T^{(i)}` of item ``shape``, drawn
    with ``generator`` (``None``: torch's global generator) in ``dtype`` on ``device``."""
    check_callable(D1, "D1")
    check_callable(D2, "D2")
    n = check_positive_int(n, "n")
    if not isinstance(shape, (tuple, list)) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"shape must be a tuple of positive ints (one item's shape), got {shape!r}")
    x_T = sample_prior(schedule, (n, *shape), generator=check_generator(generator), dtype=dtype, device=device)
    return rms_distance(sample(D1, x_T, schedule, steps=steps), sample(D2, x_T, schedule, steps=steps))


def rms_distance(a: Tensor, b: Tensor) -> float:
    r""":math:`(\frac1n\sum_i\|a_i - b_i\|^2)^{1/2}` over the batch of ``a`` and ``b`` (both ``(n, *shape)``)."""
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return float(((a - b).reshape(len(a), -1) ** 2).sum(1).mean().sqrt())
