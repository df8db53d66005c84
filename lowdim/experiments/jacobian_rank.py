r"""The rank ratio of the denoiser Jacobian along the sampling process (the tutorial's U-shaped curve).

The rank by energy of :math:`J = \partial D(x_t, t)/\partial x_t`, divided by :math:`d`, at points :math:`x_t` on
PF-ODE trajectories or forward marginals, against :math:`t`; the ranks come from the Jacobian kernel's
:func:`~lowdim.jacobian.point_ranks`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import check_batch, check_callable, check_positive_int, check_tensor
from ..jacobian import jacobian, point_ranks
from ..samplers import sample, sample_prior, time_grid
from ..schedules import Schedule
from ..sde import perturb
from .engine import cached_model, run_tasks

Tensor = torch.Tensor


def trajectory_points(
    D: Callable[..., Tensor], x_T: Tensor, times: Tensor, schedule: Schedule, steps: int = 40
) -> Tensor:
    r"""States ``(T, B, *shape)`` of the Heun PF-ODE trajectories of ``D`` from the noises ``x_T`` ``(B, *shape)`` at
    each of ``times`` ``(T,)``: the solver runs on the union of :func:`~lowdim.time_grid` ``(schedule, steps)`` and
    ``times``, so every requested time is a grid point."""
    x_T = check_batch(x_T, "x_T")
    times = check_tensor(torch.as_tensor(times, dtype=torch.float64), "times")
    if bool((times <= 0).any()) or bool((times > 1).any()):
        raise ValueError("times must lie in (0, 1]")
    # the sampler runs the grid in x_T's dtype: merge and match times in that precision
    requested = times.to(x_T.dtype)
    grid = torch.cat([time_grid(schedule, check_positive_int(steps, "steps")).to(x_T.dtype), requested])
    grid = grid.unique(sorted=True).flip(0)
    states = x_T.new_empty(len(times), *x_T.shape)
    seen = torch.zeros(len(times), dtype=torch.bool)

    def record(state: dict) -> None:
        hit = (requested == state["t"].to(requested.device)).nonzero()
        if len(hit):
            states[hit[:, 0]] = state["x"]
            seen[hit[:, 0]] = True

    with torch.no_grad():
        states[requested == 1] = x_T
        seen |= (requested == 1).cpu()
        sample(D, x_T, schedule, t_grid=grid, callback=record)
    if not bool(seen.all()):  # pragma: no cover - a grid point always lands on every requested time
        raise RuntimeError(f"times {times[~seen].tolist()} were not visited by the sampler")
    return states


class RankRatio(NamedTuple):
    """:func:`rank_ratio` result: the rank ratio's mean and standard deviation over the points at each time, and
    every point's rank by energy (``k + 1`` means "more than ``k``" on the top-``k`` route)."""

    times: Tensor  # (T,)
    mean: Tensor  # (T,)
    std: Tensor  # (T,)
    ranks: Tensor  # (T, n) long


def rank_ratio(
    D: Callable[..., Tensor],
    times: Tensor,
    schedule: Schedule,
    *,
    x0: Tensor | None = None,
    shape: tuple[int, ...] | None = None,
    draws: int = 8,
    steps: int = 40,
    energy: float = 0.99,
    k: int | None = None,
    probes: int = 16,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> RankRatio:
    r"""Rank ratio :math:`\operatorname{rank}_{\text{energy}}(J)/d` of the denoiser Jacobian :math:`J = \partial D(x_t,
    t)/\partial x_t` against ``times`` ``(T,)``, averaged over noise draws.

    Points :math:`x_t`: with ``x0`` ``(B, *shape)``, the forward marginal :math:`\alpha_t x_0 + \beta_t\varepsilon`
    with ``draws`` noises per clean point (``B · draws`` points); otherwise ``draws`` noises :math:`x_T` of item
    ``shape`` and the states of their PF-ODE trajectories under ``D`` (:func:`trajectory_points`, ``steps`` Heun
    steps). Ranks come from :func:`point_ranks` (exact with ``k=None``, else from a Krylov space of up to :math:`1.5k`
    directions plus a deflated Hutchinson tail; ``k + 1`` reads "more than ``k``").
    """
    check_callable(D, "D")
    times = check_tensor(torch.as_tensor(times, dtype=torch.float64), "times")
    draws = check_positive_int(draws, "draws")
    if x0 is not None:
        x0 = check_batch(x0, "x0")
        stacked = x0.repeat(draws, *([1] * (x0.dim() - 1)))
        points = torch.stack([perturb(stacked, float(t), schedule, generator=generator)[0] for t in times])
    else:
        if shape is None:
            raise ValueError("shape must be given (one item's shape) when x0 is None")
        x_T = sample_prior(schedule, (draws, *shape), generator=generator, dtype=dtype)
        points = trajectory_points(D, x_T, times, schedule, steps)
    d = math.prod(points.shape[2:])
    ranks = torch.stack([
        point_ranks(D, points[i], float(t), energy, k=k, probes=probes, generator=generator, chunk_size=chunk_size)
        for i, t in enumerate(tqdm(times, desc="rank ratio", disable=not progress))
    ])  # fmt: skip
    ratio = ranks.double() / d
    std = ratio.std(1) if ratio.shape[1] > 1 else torch.zeros(len(times), dtype=torch.float64)
    return RankRatio(times, ratio.mean(1), std, ranks)


def _point_spectra(checkpoint: str, chunk_size: int, task: tuple[Tensor, float]) -> dict[str, Tensor]:
    """One time of :func:`jacobian_spectra`: ``task`` = ``(points (B, *shape), t)``."""
    x, t = task
    start = time.perf_counter()
    J = jacobian(cached_model(checkpoint), x, t, chunk_size=chunk_size)
    values = torch.linalg.svdvals(J.double())
    return {"singular_values": values, "seconds": np.float64(time.perf_counter() - start)}


def jacobian_spectra(
    checkpoint: str,
    points: Tensor,
    times: Sequence[float],
    *,
    chunk_size: int = 512,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    r"""All singular values of the full Jacobian :math:`\partial D(x, t)/\partial x` of the network in the data file
    ``checkpoint`` (:func:`~lowdim.experiments.engine.cached_model`) at ``points[i]`` ``(T, B, *shape)`` and
    ``times[i]`` (:func:`~lowdim.jacobian.jacobian` in ``chunk_size`` rows per reverse pass, a float64 SVD), each
    time a task of :func:`~lowdim.experiments.engine.run_tasks` (``workers``, ``scheduler``, ``store``).

    Returns the singular values ``(T, B, d)`` and each task's seconds ``(T,)``."""
    points = check_tensor(torch.as_tensor(points), "points")
    if points.dim() < 3 or points.shape[0] != len(times):
        raise ValueError(f"points must have shape (len(times), B, *shape), got {tuple(points.shape)}")
    tasks = [(points[i], float(t)) for i, t in enumerate(times)]
    done = run_tasks(partial(_point_spectra, checkpoint, check_positive_int(chunk_size, "chunk_size")), tasks,
                     workers=workers, scheduler=scheduler, store=store, progress=progress,
                     desc="full Jacobians")  # fmt: skip
    return np.stack([d["singular_values"] for d in done]), np.array([float(d["seconds"]) for d in done])
