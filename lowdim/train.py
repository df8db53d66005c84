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
from ._random import drawing_from, rand, randint, randn
from .models import PreconditionedDenoiser, build_denoiser
from .schedules import VP, Schedule

Tensor = torch.Tensor
WEIGHTINGS = ("eps", "edm")
NOISE_LEVELS = ("uniform", "lognormal")
LOGNORMAL = (-1.2, 1.2)  # mean and standard deviation of log sigma for noise="lognormal" (Karras et al. 2022)
LR_SCHEDULES = ("constant", "cosine")
EMA = torch.optim.swa_utils.AveragedModel


def dsm_loss(
    model: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    weighting: str = "edm",
    t_min: float = 1e-3,
    sigma_data: float | None = None,
    noise: str = "uniform",
) -> Tensor:
    r"""Monte-Carlo denoising loss on a batch ``x0`` ``(B, *shape)``, one noise level and one noise draw per item.

    ``noise``: ``"uniform"`` draws :math:`t\sim\mathcal U[t_\min, 1]`; ``"lognormal"`` draws the noise level
    :math:`\log\sigma \sim \mathcal N(-1.2, 1.2^2)` (Karras et al. 2022) and the time with that :math:`\sigma`
    (clipped to :math:`[t_\min, 1]`), which puts more of the training at the low noise levels where fine detail is
    decided (uniform :math:`t` under VP spends most draws at :math:`\sigma > 1`).

    ``sigma_data`` (:math:`\sigma_d` of the ``"edm"`` weighting) defaults to the model's own ``sigma_data``, the value
    its preconditioning assumes; a model without one needs it given.
    """
    x0 = check_batch(x0, "x0")
    check_choice(weighting, "weighting", WEIGHTINGS)
    if weighting == "edm":
        sigma_data = getattr(model, "sigma_data", None) if sigma_data is None else sigma_data
        if sigma_data is None:
            raise ValueError("sigma_data must be given for weighting='edm' when the model has no sigma_data attribute")
        sigma_data = check_positive(sigma_data, "sigma_data")
    check_choice(noise, "noise", NOISE_LEVELS)
    B = x0.shape[0]
    if noise == "lognormal":
        sigma = (LOGNORMAL[0] + LOGNORMAL[1] * randn(B, generator, x0.dtype, x0.device)).exp()
        t = schedule.t_from_sigma(sigma).clamp(t_min, 1)
    else:
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


def ema_model(model: nn.Module, decay: float = 0.999) -> EMA:
    r"""An exponential moving average of ``model``'s weights, :math:`\bar\theta \leftarrow \text{decay}\,\bar\theta + (1-\text{decay})\,\theta`.

    Pass it to :func:`train_denoiser` as ``ema=``; the averaged network is ``.module``.
    """
    if not 0 < decay < 1:
        raise ValueError(f"decay must lie in (0, 1), got {decay}")
    avg = torch.optim.swa_utils.get_ema_multi_avg_fn(decay)
    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=avg, use_buffers=True)


def optimize(
    model: nn.Module,
    loss: Callable[[], Tensor],
    steps: int,
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    ema: EMA | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
    progress: bool = True,
    desc: str = "training",
) -> list[float]:
    """The training loop of :mod:`lowdim`: ``steps`` Adam steps on ``loss()`` (a fresh Monte-Carlo estimate per call).

    ``lr_schedule``: ``"constant"``, or ``"cosine"`` (decay to 0 over ``steps``). A model with a ``constrain_()``
    method (such as :class:`~lowdim.dae.LowRankDAE`, whose bases must stay orthonormal) is projected back after
    every step. ``ema`` (from :func:`ema_model`) is updated after every step; sample from ``ema.module``.
    ``callback(step, model)`` runs after every step (``step`` counts from 1). Returns the loss per step; the model
    is left in eval mode.
    """
    steps = check_positive_int(steps, "steps")
    check_positive(lr, "lr")
    check_choice(lr_schedule, "lr_schedule", LR_SCHEDULES)
    if ema is not None and not isinstance(ema, EMA):
        raise TypeError(f"ema must be an AveragedModel (see lowdim.ema_model) or None, got {type(ema).__name__}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if lr_schedule == "cosine" else None
    constrain = getattr(model, "constrain_", None)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(steps), desc=desc, disable=not progress)
    for _ in bar:
        value = loss()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
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
        losses.append(value.item())
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
    model.eval()
    if ema is not None:
        ema.eval()
    return losses


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
    ema: EMA | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
    sigma_data: float | None = None,
    noise: str = "uniform",
) -> list[float]:
    """Minimize :func:`dsm_loss` over ``data`` ``(N, *shape)`` with :func:`optimize` (Adam) for ``steps`` minibatch
    steps; returns the loss per step.

    Minibatches are drawn with replacement using ``generator``. The model is trained in place; seed the model's
    initialisation and ``generator`` for a reproducible run (:func:`fit_denoiser` does both). ``lr_schedule``,
    ``ema`` and ``callback`` as in :func:`optimize` (fitting a small training set exactly, i.e. memorizing it, needs
    the ``"cosine"`` decay); ``weighting``, ``sigma_data`` (by default the model's own) and ``noise`` as in
    :func:`dsm_loss`.
    """
    data = check_batch(data, "data")
    batch_size = check_positive_int(batch_size, "batch_size")
    generator = check_generator(generator)

    def loss() -> Tensor:
        batch = data[randint(data.shape[0], (batch_size,), generator, data.device)]
        return dsm_loss(model, batch, schedule, generator=generator, weighting=weighting, sigma_data=sigma_data,
                        noise=noise)  # fmt: skip

    return optimize(model, loss, steps, lr, lr_schedule, ema, callback, progress)


def fit_denoiser(
    data: Tensor,
    steps: int,
    arch: str = "mlp",
    *,
    generator: torch.Generator | None = None,
    init_generator: torch.Generator | None = None,
    schedule: Schedule | None = None,
    lr: float = 2e-3,
    batch_size: int = 256,
    lr_schedule: str = "cosine",
    ema_decay: float | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
    progress: bool = False,
    noise: str = "uniform",
    **capacity,
) -> PreconditionedDenoiser:
    """Build a fresh denoiser (:func:`~lowdim.models.build_denoiser`: ``arch`` and ``capacity``, e.g. ``width=256``)
    in ``data``'s dtype and device and train it on ``data`` ``(N, *shape)`` with :func:`train_denoiser` (``schedule``
    default VP, EDM weighting, noise levels by ``noise``, Adam from ``lr`` with ``lr_schedule``). Returns the trained
    network in eval mode, or its exponential moving average when ``ema_decay`` is given.

    The initial weights come from ``init_generator`` (default: ``generator``, drawn before the minibatches), the
    minibatches and noise from ``generator``.
    """
    data = check_batch(data, "data")
    generator = check_generator(generator)
    schedule = schedule or VP()
    with drawing_from(check_generator(init_generator) or generator):
        model = build_denoiser(arch, tuple(data.shape[1:]), schedule, **capacity)
    model = model.to(dtype=data.dtype, device=data.device)
    ema = ema_model(model, ema_decay) if ema_decay is not None else None
    train_denoiser(model, data, schedule, steps, batch_size=batch_size, lr=lr, generator=generator, progress=progress,
                   lr_schedule=lr_schedule, ema=ema, callback=callback, noise=noise)  # fmt: skip
    return ema.module.eval() if ema is not None else model
