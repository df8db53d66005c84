r"""Memorization, reproducibility and generalization of trained image denoisers as the training set grows.

For each capacity and training-set size :math:`N`, two networks that differ only in their random seed are trained
on the same :math:`N` images and sampled (Heun PF-ODE) from the same noises. With
:func:`~lowdim.similarity.rp_score` and :func:`~lowdim.similarity.gl_score`:

- **RP** compares the two networks' samples pair by pair: do two models map the same noise to the same image?
- **GL** compares the first network's samples with its training set: are they new images or copies?

The seed papers find two regimes: *memorization* (RP high, GL ≈ 0: both models reproduce the same training
images) and *generalization* (RP high, GL high: both models learn the same new distribution), with a transition
(RP dips) between them whose location grows with the capacity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import check_batch, check_choice, check_positive_int
from ._random import seeded
from .checkpoints import ema_model
from .models import MLPDenoiser, PreconditionedDenoiser, UNetDenoiser
from .samplers import sample, sample_prior
from .schedules import VP, Schedule
from .similarity import THRESHOLD, Embedding, gl_score, rp_score
from .train import train_denoiser

Tensor = torch.Tensor
ARCHITECTURES = ("mlp", "unet")


def build_denoiser(arch: str, shape: tuple[int, ...], schedule: Schedule, **capacity) -> PreconditionedDenoiser:
    """A fresh ``"mlp"`` (:class:`~lowdim.models.MLPDenoiser`, ``width``/``depth``) or ``"unet"``
    (:class:`~lowdim.models.UNetDenoiser`, ``channels``) denoiser for items of ``shape``."""
    check_choice(arch, "arch", ARCHITECTURES)
    if arch == "mlp":
        return MLPDenoiser(int(np.prod(shape)), schedule, **capacity)
    return UNetDenoiser(tuple(shape), schedule, **capacity)


def fit_denoiser(
    data: Tensor,
    arch: str = "mlp",
    steps: int = 8000,
    seed: int = 0,
    lr: float = 2e-3,
    batch_size: int = 256,
    ema_decay: float = 0.999,
    schedule: Schedule | None = None,
    progress: bool = False,
    **capacity,
) -> tuple[PreconditionedDenoiser, float]:
    """Train a fresh denoiser (:func:`build_denoiser`) on ``data`` ``(N, *shape)`` by denoising score matching (VP by
    default, EDM weighting, Adam with cosine decay from ``lr``) and return its EMA weights (``ema_decay``) and the
    training time in seconds. ``seed`` fixes the initialization and the minibatches."""
    data = check_batch(data, "data")
    schedule = schedule or VP()
    with seeded(seed):
        model = build_denoiser(arch, tuple(data.shape[1:]), schedule, **capacity).to(data.dtype)
    ema = ema_model(model, ema_decay)
    start = time.perf_counter()
    train_denoiser(model, data, schedule, steps, batch_size=batch_size, lr=lr,
                   generator=torch.Generator().manual_seed(seed), progress=progress, lr_schedule="cosine", ema=ema)  # fmt: skip
    return ema.module.eval(), time.perf_counter() - start


def sample_from_seed(
    model: Callable[[Tensor, Tensor], Tensor], shape: tuple[int, ...], n: int, seed: int, steps: int = 40,
    schedule: Schedule | None = None, dtype: torch.dtype = torch.float32,
) -> Tensor:  # fmt: skip
    """``n`` Heun PF-ODE samples ``(n, *shape)`` of ``model`` from the noise drawn by ``torch.Generator().manual_seed(seed)``,
    with ``schedule`` (default: the model's own ``.schedule``, else VP)."""
    schedule = schedule or getattr(model, "schedule", None) or VP()
    x_T = sample_prior(schedule, (n, *shape), generator=torch.Generator().manual_seed(seed), dtype=dtype)
    with torch.no_grad():
        return sample(model, x_T, schedule, steps=steps)


@dataclass
class ReproducibilitySweep:
    """:func:`reproducibility_sweep` result; rows are capacities, columns training-set sizes."""

    capacities: list[str]
    params: list[int]
    sizes: list[int]
    rp: np.ndarray
    gl: np.ndarray
    seconds: np.ndarray
    samples: np.ndarray  # (C, S, n_show, *shape): the first network's first samples

    def regimes(self, low: float = 0.2, high: float = 0.8) -> np.ndarray:
        """``"M"`` where GL ≤ ``low`` (mostly copies), ``"G"`` where GL ≥ ``high`` (mostly new images), else ``"T"``."""
        return np.where(self.gl <= low, "M", np.where(self.gl >= high, "G", "T"))

    def save(self, path: str) -> None:
        """Write to ``.npz`` (plain arrays)."""
        np.savez_compressed(
            path, capacities=np.array(self.capacities), params=np.array(self.params), sizes=np.array(self.sizes),
            rp=self.rp, gl=self.gl, seconds=self.seconds, samples=self.samples,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str) -> ReproducibilitySweep:
        """Read a file written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as f:
            return cls(
                f["capacities"].tolist(), f["params"].tolist(), f["sizes"].tolist(),
                f["rp"], f["gl"], f["seconds"], f["samples"],
            )  # fmt: skip

    def plot(self, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
        """RP and GL against ``N``, one line per capacity: the co-emergence figure."""
        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
        for i, (name, p) in enumerate(zip(self.capacities, self.params)):
            label = f"{name} ({p / 1e3:.0f}k params)"
            axes[0].plot(self.sizes, self.rp[i], "o-", ms=4, label=label)
            axes[1].plot(self.sizes, self.gl[i], "o-", ms=4, label=label)
        for ax, title in zip(axes, ("reproducibility (RP)", "generalization (GL)")):
            ax.set(xscale="log", xlabel="N (training images)", ylabel="score", ylim=(-0.03, 1.03), title=title)
            ax.legend(fontsize=8)
        return axes[0].figure


def reproducibility_sweep(
    data: Tensor,
    sizes: Sequence[int],
    capacities: dict[str, dict],
    steps: int = 8000,
    n_eval: int = 500,
    embed: Embedding | None = None,
    threshold: float = THRESHOLD,
    seeds: tuple[int, int] = (0, 1),
    noise_seed: int = 12345,
    n_show: int = 16,
    progress: bool = False,
) -> ReproducibilitySweep:
    """For every capacity (name → keyword arguments of :func:`fit_denoiser`, e.g. ``{"arch": "mlp", "width": 128}``)
    and every ``N`` in ``sizes``, train two networks (``seeds``) on ``data[:N]`` and score them (module docstring)
    on ``n_eval`` samples from the noise seed ``noise_seed``. The caller shuffles ``data``; training sets are nested."""
    data = check_batch(data, "data")
    check_positive_int(n_eval, "n_eval")
    if max(sizes) > len(data):
        raise ValueError(f"sizes must not exceed len(data) = {len(data)}, got {max(sizes)}")
    shape = tuple(data.shape[1:])
    C, S = len(capacities), len(sizes)
    rp, gl, seconds = np.zeros((C, S)), np.zeros((C, S)), np.zeros((C, S, len(seeds)))
    shown = np.zeros((C, S, n_show, *shape), dtype=np.float32)
    params = []
    cells = [(i, j) for i in range(C) for j in range(S)]
    names = list(capacities)
    for i, j in tqdm(cells, desc="reproducibility sweep", disable=not progress):
        runs = []
        for k, seed in enumerate(seeds):
            model, seconds[i, j, k] = fit_denoiser(data[: sizes[j]], steps=steps, seed=seed, **capacities[names[i]])
            runs.append(sample_from_seed(model, shape, n_eval, noise_seed, dtype=data.dtype))
        if j == 0:
            params.append(model.num_parameters())
        rp[i, j] = rp_score(runs[0], runs[1], threshold, embed)
        gl[i, j] = gl_score(runs[0], data[: sizes[j]], threshold, embed)
        shown[i, j] = runs[0][:n_show].float().numpy()
    return ReproducibilitySweep(names, params, list(sizes), rp, gl, seconds, shown)
