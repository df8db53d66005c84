r"""Tweedie's formula: :math:`\mathbb E[x_0 \mid x_t] = (x_t + \beta_t^2 \nabla\log p_t(x_t))/\alpha_t`, both ways."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checks import batch_view, check_callable, check_time
from .schedules import Schedule

Tensor = torch.Tensor
Field = Callable[[Tensor, Tensor], Tensor]


def safe_beta2(beta: Tensor) -> Tensor:
    r""":math:`\beta_t^2`, floored at ``eps**2`` of its dtype so that formulas stay finite at :math:`t = 0`."""
    return (beta**2).clamp_min(torch.finfo(beta.dtype).eps ** 2)


def score_from_denoiser(denoiser: Field, schedule: Schedule) -> Field:
    r"""Score :math:`s(x, t) = (\alpha_t D(x, t) - x)/\beta_t^2` from a denoiser ``D(x, t)``; shapes ``(B, *shape)``."""
    check_callable(denoiser, "denoiser")

    def score(x: Tensor, t: float | Tensor) -> Tensor:
        t = check_time(t, x)
        alpha, beta2 = batch_view(schedule.alpha(t), x), batch_view(safe_beta2(schedule.beta(t)), x)
        return (alpha * denoiser(x, t) - x) / beta2

    return score


def denoiser_from_score(score: Field, schedule: Schedule) -> Field:
    r"""Denoiser :math:`D(x, t) = (x + \beta_t^2 s(x, t))/\alpha_t` from a score ``s(x, t)``; shapes ``(B, *shape)``."""
    check_callable(score, "score")

    def denoiser(x: Tensor, t: float | Tensor) -> Tensor:
        t = check_time(t, x)
        alpha, beta2 = batch_view(schedule.alpha(t), x), batch_view(safe_beta2(schedule.beta(t)), x)
        return (x + beta2 * score(x, t)) / alpha

    return denoiser
