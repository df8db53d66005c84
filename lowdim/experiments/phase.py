r"""Phase transitions of subspace recovery: success probability over (intrinsic dimension r, samples N).

For each cell and trial we draw ``K`` mutually orthogonal uniformly random subspaces of rank ``r`` in
:math:`\mathbb R^d`, ``N`` noise-free points on each (:math:`x = U_k a`, :math:`a \sim \mathcal N(0, I_r)`), fit the
subspaces with ``method`` and call the trial a **success** when :func:`~lowdim.subspaces.subspace_recovery_error`
is below ``threshold`` (default 0.1, i.e. a root-mean-square principal-angle sine of about 0.1).

All trials of a row (one rank) run as one batched tensor program: data sets of different sizes are zero-padded to
a common ``(B, K N_max, d)`` tensor (zero rows change neither covariance nor objective), so there is no Python loop
over sample sizes or trials — only over the ranks and over chunks that bound memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy.stats import linregress

from .._checks import check_choice, check_generator, check_positive_int
from .._random import randn, spawn_seeds, stream
from ..dae import SIGMA_RANGE, LowRankDAE, dae_loss, train_dae
from ..subspaces import batched_recovery_error, k_subspaces_batched, orthonormal_columns, top_eigenvectors
from .engine import run_tasks
from .results import NpzResult, smallest_size

Tensor = torch.Tensor
METHODS = ("pca", "ksubspaces", "dae")


@dataclass
class PhaseTransition(NpzResult):
    """Result of :func:`phase_transition`: ``errors`` ``(len(ranks), len(sample_sizes), trials)``."""

    method: str
    d: int
    K: int
    ranks: list[int]
    sample_sizes: list[int]
    errors: np.ndarray
    threshold: float

    @property
    def success(self) -> np.ndarray:
        """Empirical success probability per cell, ``(len(ranks), len(sample_sizes))``."""
        return (self.errors < self.threshold).mean(-1)

    def boundary(self, level: float = 0.5) -> np.ndarray:
        """For each rank, the smallest N whose success probability reaches ``level`` (NaN if none)."""
        return smallest_size(self.sample_sizes, self.success >= level, sustained=False)

    def linear_boundary(self, level: float = 0.5) -> tuple[float, float, float]:
        """Least-squares line through :meth:`boundary` against the ranks (ranks without a boundary are skipped):
        ``(slope, intercept, R^2)`` (:func:`scipy.stats.linregress`)."""
        ranks, boundary = np.array(self.ranks, dtype=float), self.boundary(level)
        ok = ~np.isnan(boundary)
        fit = linregress(ranks[ok], boundary[ok])
        return float(fit.slope), float(fit.intercept), float(fit.rvalue**2)


def sweep_data(
    d: int, K: int, r: int, sample_sizes: Sequence[int], trials: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The data sets of one row (rank ``r``) of a sweep, in cell order ``(N, trial)``, in float64.

    Returns ``X`` ``(B, K * N_max, d)`` (zero rows pad data sets with fewer points) and the true bases
    ``(B, K, d, r)``, with ``B = len(sample_sizes) * trials``.
    """
    n_max = max(sample_sizes)
    n_of = torch.tensor(list(sample_sizes)).repeat_interleave(trials)
    B = len(n_of)
    Q = orthonormal_columns(randn((B, d, K * r), generator, torch.float64, "cpu"))
    bases = Q.reshape(B, d, K, r).permute(0, 2, 1, 3)
    coeffs = randn((B, K, n_max, r), generator, torch.float64, "cpu")
    coeffs = coeffs * (torch.arange(n_max)[None, :] < n_of[:, None])[:, None, :, None]
    X = torch.einsum("bkdr,bknr->bknd", bases, coeffs).reshape(B, K * n_max, d)
    return X, bases


def fit_subspaces(
    method: str,
    X: Tensor,
    col_mask: Tensor,
    generator: torch.Generator | None = None,
    restarts: int | None = None,
    steps: int = 600,
) -> Tensor:
    """Estimated bases ``(B, K, d, r_max)`` for data sets ``X`` ``(B, N, d)`` by ``method``.

    For ``"dae"`` all data sets share one rank, ``r = col_mask.shape[-1]`` (a row of a sweep). ``restarts`` defaults to 3 for ``"ksubspaces"`` (greedy seeding makes more unnecessary on clean data) and to 1
    for ``"dae"`` with ``K = 1`` (the PCA landscape is benign), 16 for ``"dae"`` with ``K > 1``.
    """
    K = col_mask.shape[1]
    if method == "pca":
        C = X.transpose(1, 2) @ X
        return top_eigenvectors(C, col_mask.shape[-1])[:, None] * col_mask[:, :, None, :]
    if method == "ksubspaces":
        return k_subspaces_batched(X, col_mask, restarts=restarts or 3, generator=generator)[0]
    # K > 1: a large step size lets restarts escape collapsed solutions (both bases on one subspace). Measured on
    # d = 48, r <= 6, N <= 10, 3 trials, 16 restarts x 600 steps: agreement with K-subspaces 80 % of cells at
    # lr 0.05, 87 % at 0.2, 93 % at 0.5.
    lr = 0.05 if K == 1 else 0.5
    return fit_dae_batched(X, K, col_mask.shape[-1], generator, restarts or (1 if K == 1 else 16), steps, lr)


def fit_dae_batched(
    X: Tensor,
    K: int,
    r: int,
    generator: torch.Generator | None,
    restarts: int,
    steps: int,
    lr: float = 0.05,
    draws: int = 4,
    sigma_range: tuple[float, float] = SIGMA_RANGE,
) -> Tensor:
    """Bases ``(B, K, d, r)`` for data sets ``X`` ``(B, N, d)``: one stacked :class:`~lowdim.dae.LowRankDAE` of rank
    ``r`` holds every data set times ``restarts`` and trains at once in float32; for each data set the restart with
    the lowest denoising loss (on the same fixed noise for all) is kept."""
    B, _, d = X.shape
    data = X.float().repeat_interleave(restarts, 0)
    model = LowRankDAE(d, K, r, n_models=len(data), generator=generator, dtype=torch.float32)
    train_dae(
        model, data, steps=steps, lr=lr, draws=draws, generator=generator, progress=False, sigma_range=sigma_range
    )
    with torch.no_grad():
        fixed_noise = stream(0)
        final = dae_loss(model, data, fixed_noise, 16, sigma_range, per_model=True)
    best = final.reshape(B, restarts).argmin(1) + torch.arange(B) * restarts
    return model.bases[best].to(X.dtype)


def _phase_row(method: str, d: int, K: int, sample_sizes: list[int], trials: int, restarts: int | None, steps: int,
               chunk_size: int, task: tuple[int, int]) -> dict[str, Tensor]:  # fmt: skip
    """One row of :func:`phase_transition`: recovery errors ``(len(sample_sizes), trials)`` at rank ``task[0]``,
    drawn from the row's own seed ``task[1]``."""
    r, seed = task
    g = stream(seed)
    X, truth = sweep_data(d, K, r, sample_sizes, trials, g)
    col_mask = torch.ones(len(X), K, r, dtype=torch.bool)
    size = len(X) if method == "dae" else chunk_size  # one stacked DAE per row; chunks bound memory otherwise
    errors = []
    for start in range(0, len(X), size):
        sl = slice(start, start + size)
        est = fit_subspaces(method, X[sl], col_mask[sl], g, restarts, steps)
        errors.append(batched_recovery_error(est, truth[sl], col_mask[sl]))
    return {"errors": torch.cat(errors).reshape(len(sample_sizes), trials)}


def phase_tasks(
    method: str, d: int, K: int, ranks: Sequence[int], sample_sizes: Sequence[int], trials: int,
    generator: torch.Generator, restarts: int | None = None, steps: int = 600, chunk_size: int = 256,
) -> tuple[Callable, list[tuple[int, int]]]:  # fmt: skip
    """The rows of :func:`phase_transition` as tasks for :func:`~lowdim.experiments.engine.run_tasks`: the function
    that computes one row, and the tasks ``(rank, the row's own seed)``, seeds drawn from ``generator`` in order."""
    tasks = list(zip(ranks, spawn_seeds(generator, len(ranks))))
    return partial(_phase_row, method, d, K, list(sample_sizes), trials, restarts, steps, chunk_size), tasks


def phase_transition(
    method: str,
    d: int,
    K: int,
    ranks: Sequence[int],
    sample_sizes: Sequence[int],
    trials: int,
    generator: torch.Generator | None = None,
    threshold: float = 0.1,
    chunk_size: int = 256,
    progress: bool = False,
    restarts: int | None = None,
    steps: int = 600,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
) -> PhaseTransition:
    """Success probability of recovering ``K`` orthogonal rank-``r`` subspaces from ``N`` points each.

    ``method`` is ``"pca"`` (``K`` must be 1), ``"ksubspaces"`` or ``"dae"`` (the MoLRG-parameterized DAE trained by
    :func:`~lowdim.dae.train_dae`, all data sets of one rank as one stacked model); see the module docstring for
    the data and the success criterion. Each row (rank) is an independently seeded sub-sweep (one child stream
    of ``generator`` per row), so the same seed gives the same sweep and a sweep over the first ranks reproduces those
    rows; within a row all trials and sample sizes run batched, in chunks of ``chunk_size`` (one stacked DAE for
    ``"dae"``). The rows are the tasks of :func:`~lowdim.experiments.engine.run_tasks`: ``workers``, ``scheduler``
    and ``store`` run them on Dask and keep finished rows, with the same result as the serial run.
    """
    check_choice(method, "method", METHODS)
    d, K, trials = check_positive_int(d, "d"), check_positive_int(K, "K"), check_positive_int(trials, "trials")
    if method == "pca" and K != 1:
        raise ValueError(f"K must be 1 for method 'pca', got K = {K}")
    if not ranks or not sample_sizes:
        raise ValueError("ranks and sample_sizes must be non-empty")
    for n in sample_sizes:
        check_positive_int(n, "sample_sizes")
    for r in ranks:
        check_positive_int(r, "ranks")
    if K * max(ranks) > d:
        raise ValueError(
            f"ranks must satisfy K * max(ranks) <= d for orthogonal subspaces, got {K} * {max(ranks)} > {d}"
        )
    generator = check_generator(generator)
    row, tasks = phase_tasks(method, d, K, ranks, sample_sizes, trials, generator, restarts, steps, chunk_size)
    done = run_tasks(row, tasks, workers=workers, scheduler=scheduler, store=store, progress=progress,
                     desc=f"{method} sweep")  # fmt: skip
    rows = [torch.as_tensor(r["errors"]) for r in done]
    errors = torch.stack(rows).cpu().numpy()
    return PhaseTransition(method, d, K, list(ranks), list(sample_sizes), errors, threshold)
