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

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import check_batch, check_positive_int
from .._random import stream
from ..samplers import sample, sample_prior
from ..schedules import VP, Schedule
from ..similarity import THRESHOLD, Embedding, gl_score, rp_score
from ..train import fit_denoiser
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
) -> ReproducibilitySweep:
    """For every capacity (name → keyword arguments of :func:`~lowdim.train.fit_denoiser`, e.g.
    ``{"arch": "mlp", "width": 128}``) and every ``N`` in ``sample_sizes``, train two networks on ``data[:N]`` and
    score them (module docstring) on ``n_eval`` samples from the same noise. The caller shuffles ``data``; training
    sets are nested. Every network is its own task: network ``k`` initializes and trains from copies of the stream
    of ``seeds[k]`` (lr 2e-3 with cosine decay, batches of 256, EMA 0.999 unless the capacity says otherwise), and
    both are sampled from the stream of ``noise_seed``."""
    data = check_batch(data, "data")
    check_positive_int(n_eval, "n_eval")
    if max(sample_sizes) > len(data):
        raise ValueError(f"sample_sizes must not exceed len(data) = {len(data)}, got {max(sample_sizes)}")
    shape = tuple(data.shape[1:])
    C, S = len(capacities), len(sample_sizes)
    rp, gl, seconds = np.zeros((C, S)), np.zeros((C, S)), np.zeros((C, S, len(seeds)))
    shown = np.zeros((C, S, n_show, *shape), dtype=np.float32)
    params = []
    cells = [(i, j) for i in range(C) for j in range(S)]
    names = list(capacities)
    for i, j in tqdm(cells, desc="reproducibility sweep", disable=not progress):
        runs, train = [], data[: sample_sizes[j]]
        for k, seed in enumerate(seeds):
            start = time.perf_counter()
            model = fit_denoiser(train, steps, **{"ema_decay": 0.999, **capacities[names[i]]},
                                 generator=stream(seed), init_generator=stream(seed))  # fmt: skip
            seconds[i, j, k] = time.perf_counter() - start
            runs.append(draw_samples(model, shape, n_eval, stream(noise_seed), dtype=data.dtype))
        if j == 0:
            params.append(model.num_parameters())
        rp[i, j] = rp_score(runs[0], runs[1], threshold, embed)
        gl[i, j] = gl_score(runs[0], train, threshold, embed)
        shown[i, j] = runs[0][:n_show].float().cpu().numpy()
    return ReproducibilitySweep(names, params, list(sample_sizes), rp, gl, seconds, shown)
