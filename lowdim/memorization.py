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

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import check_batch, check_generator, check_positive_int
from ._random import seeded
from .models import MLPDenoiser
from .molrg import MoLRG, random_molrg
from .samplers import sample, sample_prior
from .schedules import VP
from .train import train_denoiser

Tensor = torch.Tensor

MEMORIZED_RATIO = 1 / 3


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
class MemorizationSweep:
    """Result of :func:`memorization_sweep`: per rank ``r`` (rows) and training points per component ``N``
    (columns), the memorized fraction and the median subspace residual of the generated samples."""

    d: int
    K: int
    ranks: list[int]
    sizes: list[int]
    memorized: np.ndarray
    residual: np.ndarray

    def transition(self, level: float = 0.5) -> np.ndarray:
        """Per rank, the smallest ``N`` from which on the memorized fraction stays below ``level`` (NaN if it never
        does within ``sizes``)."""
        out = []
        for row in self.memorized:
            above = np.nonzero(row >= level)[0]
            start = 0 if len(above) == 0 else above[-1] + 1
            out.append(self.sizes[start] if start < len(self.sizes) else np.nan)
        return np.array(out, dtype=float)

    def save(self, path: str) -> None:
        """Write the sweep to ``.npz`` (plain arrays, no pickle)."""
        np.savez_compressed(
            path,
            d=self.d,
            K=self.K,
            ranks=np.array(self.ranks),
            sizes=np.array(self.sizes),
            memorized=self.memorized,
            residual=self.residual,
        )

    @classmethod
    def load(cls, path: str) -> MemorizationSweep:
        """Read a sweep written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as f:
            return cls(
                int(f["d"]), int(f["K"]), f["ranks"].tolist(), f["sizes"].tolist(), f["memorized"], f["residual"]
            )

    def plot(self, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
        """Memorized fraction and median subspace residual against ``N`` (log scale), one line per rank."""
        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
        for i, r in enumerate(self.ranks):
            axes[0].plot(self.sizes, self.memorized[i], "o-", ms=4, label=f"r = {r}")
            axes[1].plot(self.sizes, self.residual[i], "o-", ms=4, label=f"r = {r}")
        axes[0].set(
            xscale="log",
            xlabel="N (training points per component)",
            ylabel="memorized fraction",
            ylim=(-0.03, 1.03),
            title="copies of training points",
        )
        axes[1].set(
            xscale="log",
            yscale="log",
            xlabel="N (training points per component)",
            ylabel="median residual",
            title="distance to the true subspaces",
        )
        for ax in axes:
            ax.legend(fontsize=8)
        return axes[0].figure


def train_and_sample(
    train: Tensor,
    steps: int,
    n_samples: int,
    generator: torch.Generator,
    width: int = 256,
    depth: int = 3,
    sample_steps: int = 40,
) -> Tensor:
    """Train a fresh :class:`~lowdim.models.MLPDenoiser` on ``train`` ``(N, d)`` (VP, EDM weighting, Adam from
    lr 3e-3 with cosine decay, batches of 256 drawn with replacement) and return ``n_samples`` PF-ODE samples
    (Heun, ``sample_steps`` steps)."""
    schedule = VP()
    with seeded(int(torch.randint(0, 2**31 - 1, (1,), generator=generator))):
        model = MLPDenoiser(train.shape[1], schedule, width=width, depth=depth).to(train.dtype)
    train_denoiser(
        model,
        train,
        schedule,
        steps,
        batch_size=256,
        lr=3e-3,
        generator=generator,
        progress=False,
        lr_schedule="cosine",
    )
    x_T = sample_prior(schedule, (n_samples, train.shape[1]), generator=generator, dtype=train.dtype)
    with torch.no_grad():
        return sample(model, x_T, schedule, steps=sample_steps, method="heun")


def memorization_sweep(
    d: int,
    K: int,
    ranks: Sequence[int],
    sizes: Sequence[int],
    steps: int = 16000,
    n_samples: int = 200,
    width: int = 256,
    depth: int = 3,
    generator: torch.Generator | None = None,
    progress: bool = False,
    n_pool: int | None = None,
) -> MemorizationSweep:
    """Train one network per (rank, ``N``) on ``N`` points per component of a random MoLRG (``K`` orthogonal
    rank-``r`` subspaces of :math:`\\mathbb R^d`; training sets are nested in ``N``), sample it and measure
    memorization and distance to the subspaces (module docstring). Each rank row is seeded by one draw from
    ``generator``, in order, and each cell's training and sampling by a seed derived from its row and ``N``; the
    training sets are the first ``N`` points of a pool of ``n_pool`` (default ``max(sizes)``) per component. So a
    sweep over the first ranks and any sizes, with the same ``n_pool``, reproduces those cells."""
    d, K = check_positive_int(d, "d"), check_positive_int(K, "K")
    n_pool = check_positive_int(n_pool or max(sizes), "n_pool")
    if max(sizes) > n_pool:
        raise ValueError(f"n_pool must be >= max(sizes) = {max(sizes)}, got {n_pool}")
    generator = check_generator(generator)
    seeds = [int(torch.randint(0, 2**62, (1,), generator=generator)) for _ in ranks]
    memorized = np.zeros((len(ranks), len(sizes)))
    residual = np.zeros((len(ranks), len(sizes)))
    cells = [(i, j) for i in range(len(ranks)) for j in range(len(sizes))]
    for i, j in tqdm(cells, desc="memorization sweep", disable=not progress):
        g = torch.Generator().manual_seed(seeds[i])
        truth = random_molrg(d, K, ranks[i], generator=g, dtype=torch.float32)
        pool = torch.stack(
            [truth.bases[k] @ torch.randn(ranks[i], n_pool, generator=g, dtype=torch.float32) for k in range(K)]
        )
        train = pool[:, :, : sizes[j]].permute(0, 2, 1).reshape(K * sizes[j], d)  # nested in N
        g_cell = torch.Generator().manual_seed(seeds[i] + 1 + sizes[j])
        samples = train_and_sample(train, steps, n_samples, g_cell, width, depth)
        memorized[i, j] = memorized_fraction(samples, train)
        residual[i, j] = float(subspace_residual(samples, truth).median())
    return MemorizationSweep(d, K, list(ranks), list(sizes), memorized, residual)
