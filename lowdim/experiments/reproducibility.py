r"""Memorization, reproducibility and generalization of trained image denoisers as the training set grows.

For each capacity and training-set size :math:`N`, two networks that differ only in their random seed are trained
on the same :math:`N` images and sampled (Heun PF-ODE) from the same noises. With
:func:`~lowdim.similarity.rp_score` and :func:`~lowdim.similarity.gl_score`:

- **RP** compares the two networks' samples pair by pair: do two models map the same noise to the same image?
- **GL** compares the first network's samples with its training set: are they new images or copies?

Zhang et al. (2024) find two regimes: *memorization* (RP high, GL ≈ 0: both models reproduce the same training
images) and *generalization* (RP high, GL high: both models learn the same new distribution), with a transition
(RP dips) between them whose location grows with the capacity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .._checks import check_batch, check_positive_int
from .._random import stream
from ..samplers import sample, sample_prior
from ..schedules import VP, Schedule
from ..similarity import THRESHOLD, Embedding, gl_score, rp_score
from ..train import fit_denoiser
from .engine import run_tasks
from .results import NpzResult

Tensor = torch.Tensor


def draw_samples(
    model: Callable[[Tensor, Tensor], Tensor], shape: tuple[int, ...], n: int, generator: torch.Generator | None,
    steps: int = 40, schedule: Schedule | None = None, dtype: torch.dtype = torch.float32,
) -> Tensor:  # fmt: skip
    """``n`` Heun PF-ODE samples ``(n, *shape)`` of ``model`` from noise drawn with ``generator``, with ``schedule``
    (default: the model's own ``.schedule``, else VP)."""
    schedule = schedule or getattr(model, "schedule", None) or VP()
    x_T = sample_prior(schedule, (n, *shape), generator=generator, dtype=dtype)
    return sample(model, x_T, schedule, steps=steps)


@dataclass
class ReproducibilitySweep(NpzResult):
    """:func:`reproducibility_sweep` result; rows are capacities, columns training-set sizes."""

    capacities: list[str]
    params: list[int]
    sample_sizes: list[int]
    rp: np.ndarray
    gl: np.ndarray
    seconds: np.ndarray
    samples: np.ndarray  # (C, S, n_show, *shape): the first network's first samples

    def regimes(self, low: float = 0.2, high: float = 0.8) -> np.ndarray:
        """``"M"`` where GL ≤ ``low`` (mostly copies), ``"G"`` where GL ≥ ``high`` (mostly new images), else ``"T"``."""
        return np.where(self.gl <= low, "M", np.where(self.gl >= high, "G", "T"))

    def joint_regimes(self, rp_min: float = 0.5, low: float = 0.2, high: float = 0.8) -> np.ndarray:
        """Labels from both scores: ``"M"`` (GL ≤ ``low``, RP ≥ ``rp_min``: both seeds copy the same image),
        ``"G"`` (GL ≥ ``high``, RP ≥ ``rp_min``: both draw the same new image), ``"U"`` (GL ≥ ``high`` but
        RP < ``rp_min``: new images, each seed its own), ``"T"`` otherwise. ``(C, S)`` strings."""
        by_gl = self.regimes(low, high)
        return np.where(self.rp >= rp_min, by_gl, np.where(by_gl == "G", "U", "T"))


def _network_samples(data: Tensor, capacities: dict[str, dict], steps: int, n_eval: int, noise_seed: int,
                     task: tuple[str, int, int]) -> dict[str, np.ndarray]:  # fmt: skip
    """One network of :func:`reproducibility_sweep`: capacity ``task[0]`` trained on ``data[:task[1]]`` from the
    stream of seed ``task[2]``; its ``n_eval`` samples from the stream of ``noise_seed``, training time, size."""
    name, n, seed = task
    start = time.perf_counter()
    model = fit_denoiser(data[:n], steps, **{"ema_decay": 0.999, **capacities[name]}, generator=stream(seed),
                         init_generator=stream(seed))  # fmt: skip
    seconds = time.perf_counter() - start
    samples = draw_samples(model, tuple(data.shape[1:]), n_eval, stream(noise_seed), dtype=data.dtype)
    return {"samples": samples, "seconds": np.float64(seconds), "params": np.int64(model.num_parameters())}


def reproducibility_sweep(
    data: Tensor,
    sample_sizes: Sequence[int],
    capacities: dict[str, dict],
    steps: int = 8000,
    n_eval: int = 500,
    embed: Embedding | None = None,
    threshold: float = THRESHOLD,
    seeds: tuple[int, int] = (0, 1),
    noise_seed: int = 12345,
    n_show: int = 16,
    progress: bool = False,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
) -> ReproducibilitySweep:
    """For every capacity (name → keyword arguments of :func:`~lowdim.train.fit_denoiser`, e.g.
    ``{"arch": "mlp", "width": 128}``) and every ``N`` in ``sample_sizes``, train two networks on ``data[:N]`` and
    score them (module docstring) on ``n_eval`` samples from the same noise. The caller shuffles ``data``; training
    sets are nested. Every network is its own task of :func:`~lowdim.experiments.engine.run_tasks` (``workers``,
    ``scheduler``, ``store``): network ``k`` initializes and trains from copies of the stream of ``seeds[k]`` (lr
    2e-3 with cosine decay, batches of 256, EMA 0.999 unless the capacity says otherwise), and both are sampled from
    the stream of ``noise_seed``; the scores are computed in the caller from the returned samples."""
    data = check_batch(data, "data")
    check_positive_int(n_eval, "n_eval")
    if len(seeds) != 2:
        raise ValueError(f"seeds must name the two networks of a cell, got {seeds!r}")
    if max(sample_sizes) > len(data):
        raise ValueError(f"sample_sizes must not exceed len(data) = {len(data)}, got {max(sample_sizes)}")
    names = list(capacities)
    C, S = len(names), len(sample_sizes)
    tasks = [(name, int(n), int(seed)) for name in names for n in sample_sizes for seed in seeds]
    compute = partial(_network_samples, data, capacities, steps, n_eval, noise_seed)
    done = run_tasks(compute, tasks, workers=workers, scheduler=scheduler, store=store, progress=progress,
                     desc="reproducibility sweep")  # fmt: skip
    done = [done[i : i + 2] for i in range(0, len(done), 2)]  # per cell (capacity-major), both networks
    rp, gl = np.zeros((C, S)), np.zeros((C, S))
    seconds = np.array([[net["seconds"] for net in cell] for cell in done]).reshape(C, S, 2)
    shown = np.stack([cell[0]["samples"][:n_show] for cell in done]).reshape(C, S, n_show, *data.shape[1:])
    for c, (first, second) in enumerate(done):
        i, j = divmod(c, S)
        runs = [torch.as_tensor(first["samples"]), torch.as_tensor(second["samples"])]
        rp[i, j] = rp_score(runs[0], runs[1], threshold, embed)
        gl[i, j] = gl_score(runs[0], data[: sample_sizes[j]], threshold, embed)
    params = [int(done[i * S][0]["params"]) for i in range(C)]
    return ReproducibilitySweep(names, params, list(sample_sizes), rp, gl, seconds, shown.astype(np.float32))


def seed_spread(sweeps: Sequence[ReproducibilitySweep]) -> dict[str, np.ndarray]:
    """RP and GL of sweeps that differ only in their seed pairs (same capacities, sizes, data and noise): the mean
    and the sample standard deviation (``ddof=1``) over the sweeps, ``{"rp_mean", "rp_std", "gl_mean", "gl_std"}``,
    each ``(C, S)``."""
    if len(sweeps) < 2:
        raise ValueError(f"sweeps must hold at least two sweeps for a spread, got {len(sweeps)}")
    first = sweeps[0]
    for sweep in sweeps[1:]:
        if sweep.capacities != first.capacities or sweep.sample_sizes != first.sample_sizes:
            raise ValueError("sweeps must share their capacities and sample sizes")
    out = {}
    for name in ("rp", "gl"):
        values = np.stack([getattr(s, name) for s in sweeps])
        out[f"{name}_mean"], out[f"{name}_std"] = values.mean(0), values.std(0, ddof=1)
    return out
