r"""Denoising score matching: train a denoiser :math:`D_\theta(x_t, t)` to predict :math:`x_0`.

With :math:`s_\theta = (\alpha_t D_\theta - x_t)/\beta_t^2` the tutorial's loss is

.. math:: \mathbb E\,\|\varepsilon + \beta_t s_\theta(x_t, t)\|^2 = \mathbb E\,\frac{\alpha_t^2}{\beta_t^2}\|D_\theta(x_t,t) - x_0\|^2,

an :math:`x_0`-prediction loss with weight :math:`1/\sigma_t^2`. ``weighting="edm"`` uses
:math:`(\sigma^2+\sigma_d^2)/(\sigma\sigma_d)^2` instead (Karras et al. 2022), which keeps the loss of every
noise level of order one; both have the same minimizer, :math:`\mathbb E[x_0\mid x_t]`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from ._checks import batch_view, check_batch, check_choice, check_generator, check_positive, check_positive_int
from ._random import rand, randn
from .schedules import Schedule

Tensor = torch.Tensor
WEIGHTINGS = ("eps", "edm")


def dsm_loss(
    model: nn.Module,
    x0: Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    weighting: str = "edm",
    t_min: float = 1e-3,
    sigma_data: float = 0.5,
) -> Tensor:
    r"""Monte-Carlo denoising loss on a batch ``x0`` ``(B, *shape)``: :math:`t\sim\mathcal U[t_\min, 1]`, one noise each."""
    x0 = check_batch(x0, "x0")
    check_choice(weighting, "weighting", WEIGHTINGS)
    B = x0.shape[0]
    t = t_min + (1 - t_min) * rand(B, generator, x0.dtype, x0.device)
    eps = randn(x0.shape, generator, x0.dtype, x0.device)
    alpha, beta = batch_view(schedule.alpha(t), x0), batch_view(schedule.beta(t), x0)
    err = ((model(alpha * x0 + beta * eps, t) - x0) ** 2).reshape(B, -1).sum(1)
    sigma2 = schedule.sigma(t) ** 2
    if weighting == "eps":
        weight = 1 / sigma2
    else:
        weight = (sigma2 + sigma_data**2) / (sigma2 * sigma_data**2)
    return (weight * err).mean()


def train_denoiser(
    model: nn.Module,
    data: Tensor,
    schedule: Schedule,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    progress: bool = True,
    weighting: str = "edm",
    lr_schedule: str = "constant",
    ema: torch.optim.swa_utils.AveragedModel | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Minimize :func:`dsm_loss` over ``data`` ``(N, *shape)`` with Adam for ``steps`` minibatch steps.

    Minibatches are drawn with replacement using ``generator``; returns the loss per step. The model is
    trained in place; seed the model's initialisation and ``generator`` for a reproducible run.
    ``lr_schedule``: ``"constant"``, or ``"cosine"`` (decay to 0 over ``steps``; fitting a small training set
    exactly, i.e. memorizing it, needs the step size to shrink). A model with a ``constrain_()`` method (such as
    :class:`~lowdim.dae.LowRankDAE`, whose bases must stay orthonormal) is projected back after every step.
    ``ema`` (from :func:`~lowdim.checkpoints.ema_model`) is updated after every step; sample from ``ema.module``.
    ``callback(step, model)`` runs after every step (``step`` counts from 1), e.g. to measure the model during training.
    """
    data = check_batch(data, "data")
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    check_positive(lr, "lr")
    check_choice(lr_schedule, "lr_schedule", ("constant", "cosine"))
    generator = check_generator(generator)
    if ema is not None and not isinstance(ema, torch.optim.swa_utils.AveragedModel):
        raise TypeError(
            f"ema must be an AveragedModel (see lowdim.checkpoints.ema_model) or None, got {type(ema).__name__}"
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if lr_schedule == "cosine" else None
    constrain = getattr(model, "constrain_", None)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(steps), desc="training", disable=not progress)
    for _ in bar:
        idx = torch.randint(
            0, data.shape[0], (batch_size,), generator=generator, device=generator.device if generator else "cpu"
        ).to(data.device)
        loss = dsm_loss(model, data[idx], schedule, generator=generator, weighting=weighting)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if constrain is not None:
            constrain()
        if decay is not None:
            decay.step()
        if ema is not None:
            ema.update_parameters(model)
        if callback is not None:
            callback(len(losses) + 1, model)
            model.train()
        losses.append(loss.item())
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
    model.eval()
    if ema is not None:
        ema.eval()
    return losses
