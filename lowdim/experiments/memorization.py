r"""Memorization versus generalization of a trained network denoiser on MoLRG data.

For ``N`` training points per component of a random MoLRG, a time-conditioned
:class:`~lowdim.models.MLPDenoiser` is trained by denoising score matching and sampled with the Heun PF-ODE
solver. Two distances of the generated samples :math:`\hat x` tell the regimes apart:

- **memorization**: :math:`\hat x` is a copy of a training point. Following Gu et al. (2023) we call a sample
  memorized when its nearest training point is much closer than the second nearest,
  :math:`\|\hat x - y_{(1)}\| < \tfrac13\|\hat x - y_{(2)}\|`;
- **generalization**: :math:`\hat x` lies on the true union of subspaces, measured by the relative residual
  :math:`\min_k\|(I - U_kU_k^\top)\hat x\| / \|\hat x\|` (0 on the support).

A model that memorizes has a near-zero residual too (training points lie on the subspaces), so the two are read
together: generalization is a small residual *and* a small memorized fraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .._checks import check_batch, check_generator, check_positive_int
from .._random import randn, spawn_seeds, stream
from ..molrg import MoLRG, random_molrg
from ..samplers import sample, sample_prior
from ..train import fit_denoiser
from .engine import run_tasks
from .results import NpzResult, smallest_size

Tensor = torch.Tensor

MEMORIZED_RATIO = 1 / 3
INIT_SEED_BOUND = 2**31 - 1  # each cell's initialization seed is drawn below this from the cell's stream


def nearest_training_distances(samples: Tensor, train: Tensor) -> tuple[Tensor, Tensor]:
    """Distances ``(M,)`` from each of ``samples`` ``(M, d)`` to its nearest and second-nearest rows of ``train``."""
    samples, train = check_batch(samples, "samples"), check_batch(train, "train")
    if train.shape[0] < 2:
        raise ValueError(f"train must hold at least 2 points, got {train.shape[0]}")
    two = torch.cdist(samples.reshape(len(samples), -1), train.reshape(len(train), -1)).topk(2, largest=False).values
    return two[:, 0], two[:, 1]


def memorized_fraction(samples: Tensor, train: Tensor, ratio: float = MEMORIZED_RATIO) -> float:
    r"""Fraction of ``samples`` whose nearest training point is closer than ``ratio`` times the second nearest."""
    first, second = nearest_training_distances(samples, train)
    return float((first < ratio * second).to(torch.float64).mean())


def subspace_residual(samples: Tensor, model: MoLRG) -> Tensor:
    r"""Relative distance ``(M,)`` of each sample to the nearest subspace of ``model``,
    :math:`\min_k\|(I - U_kU_k^\top)x\|/\|x\|`."""
    samples = check_batch(samples, "samples", model.dim)
    flat = samples.reshape(len(samples), -1)
    res = torch.stack([(flat - flat @ U @ U.T).norm(dim=1) for U in model.bases], dim=1).amin(1)
    return res / flat.norm(dim=1).clamp_min(torch.finfo(flat.dtype).tiny)


@dataclass
class MemorizationSweep(NpzResult):
    """Result of :func:`memorization_sweep`: per rank ``r`` (rows) and training points per component ``N``
    (columns, ``sample_sizes``), the memorized fraction and the median subspace residual of the generated samples."""

    d: int
    K: int
    ranks: list[int]
    sample_sizes: list[int]
    memorized: np.ndarray
    residual: np.ndarray

    def transition(self, level: float = 0.5) -> np.ndarray:
        """Per rank, the smallest ``N`` from which on the memorized fraction stays below ``level`` (NaN if it never
        does within ``sample_sizes``)."""
        return smallest_size(self.sample_sizes, self.memorized < level)


def train_and_sample(
    train: Tensor,
    steps: int,
    n_samples: int,
    generator: torch.Generator | None,
    width: int = 256,
    depth: int = 3,
    sample_steps: int = 40,
) -> Tensor:
    """Train a fresh :class:`~lowdim.models.MLPDenoiser` on ``train`` ``(N, d)`` with :func:`~lowdim.train.fit_denoiser`
    (VP, EDM weighting, Adam from lr 3e-3 with cosine decay, batches of 256 drawn with replacement; the initial
    weights from a seed drawn from ``generator``, then the minibatches) and return ``n_samples`` PF-ODE samples (Heun,
    ``sample_steps`` steps) from noise drawn from ``generator``."""
    init = stream(spawn_seeds(generator, 1, bound=INIT_SEED_BOUND)[0])
    model = fit_denoiser(train, steps, "mlp", generator=generator, init_generator=init, lr=3e-3, width=width,
                         depth=depth)  # fmt: skip
    x_T = sample_prior(model.schedule, (n_samples, train.shape[1]), generator=generator, dtype=train.dtype,
                       device=train.device)  # fmt: skip
    return sample(model, x_T, model.schedule, steps=sample_steps, method="heun")


def _memorization_cell(d: int, K: int, n_pool: int, steps: int, n_samples: int, width: int, depth: int,
                       task: tuple[int, int, int]) -> dict[str, float]:  # fmt: skip
    """One cell of :func:`memorization_sweep`: rank ``task[0]``, ``N = task[1]``, the row's seed ``task[2]``."""
    r, n, seed = task
    g = stream(seed)
    truth = random_molrg(d, K, r, generator=g, dtype=torch.float32)
    pool = torch.stack([truth.bases[k] @ randn((r, n_pool), g, torch.float32, "cpu") for k in range(K)])
    train = pool[:, :, :n].permute(0, 2, 1).reshape(K * n, d)  # nested in N
    samples = train_and_sample(train, steps, n_samples, stream(seed + 1 + n), width, depth)
    return {
        "memorized": memorized_fraction(samples, train),
        "residual": float(subspace_residual(samples, truth).median()),
    }


def memorization_sweep(
    d: int,
    K: int,
    ranks: Sequence[int],
    sample_sizes: Sequence[int],
    steps: int = 16000,
    n_samples: int = 200,
    width: int = 256,
    depth: int = 3,
    generator: torch.Generator | None = None,
    progress: bool = False,
    n_pool: int | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
) -> MemorizationSweep:
    """Train one network per (rank, ``N``) on ``N`` points per component of a random MoLRG (``K`` orthogonal
    rank-``r`` subspaces of :math:`\\mathbb R^d`; training sets are nested in ``N``), sample it and measure
    memorization and distance to the subspaces (module docstring). Each rank row gets a seed drawn from
    ``generator``, in order, and each cell's training and sampling the stream of seed ``row seed + 1 + N``; the
    training sets are the first ``N`` points of a pool of ``n_pool`` (default ``max(sample_sizes)``) per component.
    So a sweep over the first ranks and any sizes, with the same ``n_pool``, reproduces those cells, and the cells
    are the tasks of :func:`~lowdim.experiments.engine.run_tasks` (``workers``, ``scheduler``, ``store``)."""
    d, K = check_positive_int(d, "d"), check_positive_int(K, "K")
    n_pool = check_positive_int(n_pool or max(sample_sizes), "n_pool")
    if max(sample_sizes) > n_pool:
        raise ValueError(f"n_pool must be >= max(sample_sizes) = {max(sample_sizes)}, got {n_pool}")
    seeds = spawn_seeds(check_generator(generator), len(ranks))
    tasks = [(r, n, seed) for r, seed in zip(ranks, seeds) for n in sample_sizes]
    cell = partial(_memorization_cell, d, K, n_pool, steps, n_samples, width, depth)
    done = run_tasks(cell, tasks, workers=workers, scheduler=scheduler, store=store, progress=progress,
                     desc="memorization sweep")  # fmt: skip
    shape = (len(ranks), len(sample_sizes))
    memorized = np.array([float(c["memorized"]) for c in done]).reshape(shape)
    residual = np.array([float(c["residual"]) for c in done]).reshape(shape)
    return MemorizationSweep(d, K, list(ranks), list(sample_sizes), memorized, residual)
