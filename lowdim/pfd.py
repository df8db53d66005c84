r"""Probability flow distance (Zhang et al. 2025) and the teacher–student measurement of generalization.

For denoisers :math:`D_1, D_2` with PF-ODE maps :math:`\Phi_1, \Phi_2` (noise → sample, :func:`lowdim.sample`),

.. math:: \text{PFD}(D_1, D_2) = \Big(\mathbb E_{x_T}\,\|\Phi_1(x_T) - \Phi_2(x_T)\|^2\Big)^{1/2},

estimated from the same ``n`` noises for both maps. With a teacher :math:`D_\star` (the data law), a student
:math:`D_\theta` trained on :math:`\mathcal S = \{x^{(i)}\}_{i\le N}` drawn from it, and the empirical denoiser
:math:`D_\text{emp}` of :math:`\mathcal S`:

.. math:: \mathcal E_\text{gen} = \text{PFD}(D_\theta, D_\star), \qquad \mathcal E_\text{mem} = \text{PFD}(D_\theta, D_\text{emp}).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import check_callable, check_generator, check_positive_int
from ._random import seeded
from .denoisers import EmpiricalDenoiser
from .models import MLPDenoiser
from .molrg import MoLRG
from .samplers import sample, sample_prior
from .schedules import VP, Schedule
from .train import train_denoiser

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor], Tensor]


def pf_distance(
    D1: Denoiser,
    D2: Denoiser,
    schedule: Schedule,
    shape: tuple[int, ...],
    n: int = 256,
    steps: int = 40,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> float:
    r"""RMS distance :math:`(\frac1n\sum_i\|\Phi_1(x_T^{(i)}) - \Phi_2(x_T^{(i)})\|^2)^{1/2}` between the Heun PF-ODE
    maps (``steps`` steps) of ``D1`` and ``D2`` from the same ``n`` noises :math:`x_T^{(i)}` of item ``shape``."""
    check_callable(D1, "D1")
    check_callable(D2, "D2")
    n = check_positive_int(n, "n")
    if not isinstance(shape, (tuple, list)) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"shape must be a tuple of positive ints (one item's shape), got {shape!r}")
    x_T = sample_prior(schedule, (n, *shape), generator=check_generator(generator), dtype=dtype)
    x1 = sample(D1, x_T, schedule, steps=steps)
    x2 = x1 if D2 is D1 else sample(D2, x_T, schedule, steps=steps)
    return _rms_distance(x1, x2)


def _rms_distance(a: Tensor, b: Tensor) -> float:
    r""":math:`(\frac1n\sum_i\|a_i - b_i\|^2)^{1/2}` over the batch."""
    return float(((a - b).reshape(len(a), -1) ** 2).sum(1).mean().sqrt())


@dataclass
class TeacherStudent:
    """:func:`teacher_student` result: per student width (rows) and training-set size ``N`` (columns), the
    generalization and memorization errors and the parameter count of each width."""

    widths: list[int]
    sizes: list[int]
    params: list[int]
    e_gen: np.ndarray
    e_mem: np.ndarray
    samples: np.ndarray  # (W, S, n_show, d): each student's first PF-ODE samples from the evaluation noise
    pool: np.ndarray  # (pool_size, d): the teacher samples; student (w, N) trained on pool[:N]
    eval_seed: int

    def crossover(self) -> np.ndarray:
        """Per width, the smallest ``N`` from which on :math:`\\mathcal E_\\text{gen} < \\mathcal E_\\text{mem}` (NaN if never)."""
        out = []
        for gen, mem in zip(self.e_gen, self.e_mem):
            bad = np.nonzero(gen >= mem)[0]
            start = 0 if len(bad) == 0 else bad[-1] + 1
            out.append(self.sizes[start] if start < len(self.sizes) else np.nan)
        return np.array(out, dtype=float)

    def save(self, path: str) -> None:
        """Write to ``.npz`` (plain arrays)."""
        np.savez_compressed(
            path, widths=np.array(self.widths), sizes=np.array(self.sizes), params=np.array(self.params),
            e_gen=self.e_gen, e_mem=self.e_mem, samples=self.samples, pool=self.pool, eval_seed=self.eval_seed,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str) -> TeacherStudent:
        """Read a file written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as f:
            return cls(
                f["widths"].tolist(), f["sizes"].tolist(), f["params"].tolist(), f["e_gen"], f["e_mem"],
                f["samples"], f["pool"], int(f["eval_seed"]),
            )  # fmt: skip

    def plot(self, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
        """Left: both errors against ``N``; right: against :math:`N/\\sqrt{|\\theta|}` (the seed's scaling variable)."""
        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
        for i, (w, p) in enumerate(zip(self.widths, self.params)):
            color = f"C{i}"
            for ax, x in ((axes[0], np.array(self.sizes)), (axes[1], np.array(self.sizes) / np.sqrt(p))):
                ax.plot(x, self.e_gen[i], "o-", color=color, ms=4, label=f"$\\mathcal{{E}}_{{gen}}$, width {w}")
                ax.plot(x, self.e_mem[i], "s--", color=color, ms=4, label=f"$\\mathcal{{E}}_{{mem}}$, width {w}")
        axes[0].set(xscale="log", xlabel="N (training samples)", ylabel="PFD", title="errors vs N")
        axes[1].set(
            xscale="log", xlabel=r"$N/\sqrt{|\theta|}$", ylabel="PFD", title="errors vs the seed's scaling variable"
        )
        axes[0].legend(fontsize=7)
        return axes[0].figure


def teacher_student(
    teacher: MoLRG,
    sizes: Sequence[int],
    widths: Sequence[int] = (64, 256),
    depth: int = 3,
    steps: int = 8000,
    n_eval: int = 256,
    sample_steps: int = 40,
    generator: torch.Generator | None = None,
    progress: bool = False,
    pool_size: int | None = None,
    n_show: int = 200,
) -> TeacherStudent:
    """Train one :class:`~lowdim.models.MLPDenoiser` student per (width, ``N``) on the first ``N`` of ``pool_size``
    (default ``max(sizes)``) teacher samples (nested training sets; VP, Adam from lr 3e-3 with cosine decay, batches of 256) and measure
    :math:`\\mathcal E_\\text{gen}` and :math:`\\mathcal E_\\text{mem}` with :func:`pf_distance` on ``n_eval`` noises
    (the same noises for every student). The pool and the evaluation noise come from ``generator``; each
    student's initialization and minibatches from a seed derived from its width and ``N``. So a run over some of the
    widths and sizes, with the same ``pool_size`` and generator seed, reproduces those cells."""
    generator = check_generator(generator) or torch.Generator().manual_seed(0)
    pool_size = check_positive_int(pool_size or max(sizes), "pool_size")
    if max(sizes) > pool_size:
        raise ValueError(f"pool_size must be >= max(sizes) = {max(sizes)}, got {pool_size}")
    schedule = VP()
    pool, _ = teacher.sample(pool_size, generator=generator)
    eval_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    teacher_D = teacher.denoiser(schedule)
    e_gen = np.zeros((len(widths), len(sizes)))
    e_mem = np.zeros((len(widths), len(sizes)))
    shown = np.zeros((len(widths), len(sizes), min(n_show, n_eval), teacher.dim), dtype=np.float32)
    params = []
    cells = [(i, j) for i in range(len(widths)) for j in range(len(sizes))]
    for i, j in tqdm(cells, desc="teacher-student", disable=not progress):
        train = pool[: sizes[j]]
        with seeded(1000 * widths[i] + sizes[j]):
            student = MLPDenoiser(teacher.dim, schedule, width=widths[i], depth=depth).to(pool.dtype)
        if j == 0:
            params.append(student.num_parameters())
        g = torch.Generator().manual_seed(1000 * widths[i] + sizes[j])
        train_denoiser(student, train, schedule, steps, batch_size=256, lr=3e-3, generator=g, progress=False,
                       lr_schedule="cosine")  # fmt: skip
        noise = torch.Generator().manual_seed(eval_seed)
        x_T = sample_prior(schedule, (n_eval, teacher.dim), generator=noise, dtype=pool.dtype)
        e_gen[i, j], e_mem[i, j], mapped = generalization_errors(student, teacher_D, train, schedule, x_T, sample_steps)
        shown[i, j] = mapped[: shown.shape[2]].float().numpy()
    return TeacherStudent(list(widths), list(sizes), params, e_gen, e_mem, shown, pool.float().numpy(), eval_seed)


def generalization_errors(
    student: Denoiser, teacher: Denoiser, train: Tensor, schedule: Schedule, x_T: Tensor, steps: int = 40
) -> tuple[float, float, Tensor]:
    r""":math:`(\mathcal E_\text{gen}, \mathcal E_\text{mem})` of ``student`` from the noises ``x_T`` — PFD to ``teacher``
    and to the empirical denoiser of ``train`` — and the student's samples."""
    empirical = EmpiricalDenoiser(train).denoiser(schedule)
    mapped = {name: sample(D, x_T, schedule, steps=steps) for name, D in
              (("student", student), ("teacher", teacher), ("empirical", empirical))}  # fmt: skip
    student_map = mapped["student"]
    return _rms_distance(student_map, mapped["teacher"]), _rms_distance(student_map, mapped["empirical"]), student_map


def training_curve(
    teacher: MoLRG,
    train: Tensor,
    width: int = 256,
    depth: int = 3,
    steps: int = 12000,
    every: int = 500,
    n_eval: int = 256,
    seed: int = 0,
    eval_seed: int = 0,
    lr_schedule: str = "constant",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    r"""Train one student on ``train`` (Adam, lr 3e-3, ``lr_schedule``) and measure :math:`\mathcal E_\text{gen}`
    and :math:`\mathcal E_\text{mem}` every ``every`` steps on ``n_eval`` noises from ``eval_seed``; returns
    ``{"steps", "e_gen", "e_mem"}`` arrays (the seed's "Finding II": errors along training)."""
    schedule = VP()
    with seeded(seed):
        student = MLPDenoiser(teacher.dim, schedule, width=width, depth=depth).to(train.dtype)
    x_T = sample_prior(
        schedule, (n_eval, teacher.dim), generator=torch.Generator().manual_seed(eval_seed), dtype=train.dtype
    )
    teacher_D = teacher.denoiser(schedule)
    record: dict[str, list] = {"steps": [], "e_gen": [], "e_mem": []}

    def measure(step: int, model) -> None:
        if step % every == 0:
            model.eval()
            gen, mem, _ = generalization_errors(model, teacher_D, train, schedule, x_T)
            for key, value in zip(record, (step, gen, mem)):
                record[key].append(value)

    train_denoiser(student, train, schedule, steps, batch_size=256, lr=3e-3, generator=torch.Generator().manual_seed(seed),
                   progress=progress, lr_schedule=lr_schedule, callback=measure)  # fmt: skip
    return {key: np.array(value) for key, value in record.items()}
