r"""The teacher–student measurement of generalization with the probability flow distance (Zhang et al. 2025).

With a teacher :math:`D_\star` (the data law), a student :math:`D_\theta` trained on
:math:`\mathcal S = \{x^{(i)}\}_{i\le N}` drawn from it, and the empirical denoiser :math:`D_\text{emp}` of
:math:`\mathcal S`, both errors are probability flow distances (:func:`~lowdim.pfd.pf_distance`):

.. math:: \mathcal E_\text{gen} = \text{PFD}(D_\theta, D_\star), \qquad \mathcal E_\text{mem} = \text{PFD}(D_\theta, D_\text{emp}).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .._checks import check_generator, check_positive_int
from .._random import copy_stream, spawn_seeds, stream
from ..denoisers import EmpiricalDenoiser
from ..molrg import MoLRG
from ..pfd import rms_distance
from ..samplers import sample, sample_prior
from ..schedules import VP, Schedule
from ..train import fit_denoiser
from .engine import run_tasks
from .results import NpzResult, smallest_size

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor], Tensor]
STUDENT = {"lr": 3e-3, "batch_size": 256}  # Adam from 3e-3, batches of 256, for every student


@dataclass
class TeacherStudent(NpzResult):
    """:func:`teacher_student` result: per student width (rows) and training-set size ``N`` (columns,
    ``sample_sizes``), the generalization and memorization errors and the parameter count of each width."""

    widths: list[int]
    sample_sizes: list[int]
    params: list[int]
    e_gen: np.ndarray
    e_mem: np.ndarray
    samples: np.ndarray  # (W, S, n_show, d): each student's first PF-ODE samples from the evaluation noise
    pool: np.ndarray  # (pool_size, d): the teacher samples; student (w, N) trained on pool[:N]
    eval_seed: int

    def crossover(self) -> np.ndarray:
        """Per width, the smallest ``N`` from which on :math:`\\mathcal E_\text{gen} < \\mathcal E_\text{mem}` (NaN if never)."""
        return smallest_size(self.sample_sizes, self.e_gen < self.e_mem)


def student_seed(width: int, n: int) -> int:
    """The seed of the student of ``width`` trained on ``n`` points: its task in :func:`teacher_student`."""
    return 1000 * width + n


def _student_cell(teacher: MoLRG, pool: Tensor, eval_seed: int, depth: int, steps: int, n_eval: int,
                  sample_steps: int, n_shown: int, task: tuple[int, int]) -> dict:  # fmt: skip
    """One cell of :func:`teacher_student`: the student of width ``task[0]`` trained on ``pool[:task[1]]``."""
    width, n = task
    schedule = VP()
    train, seed = pool[:n], student_seed(width, n)
    student = fit_denoiser(train, steps, "mlp", generator=stream(seed), init_generator=stream(seed), width=width,
                           depth=depth, **STUDENT)  # fmt: skip
    x_1 = sample_prior(schedule, (n_eval, teacher.dim), generator=stream(eval_seed), dtype=pool.dtype)
    e_gen, e_mem, mapped = generalization_errors(
        student, teacher.denoiser(schedule), train, schedule, x_1, sample_steps
    )
    return {"e_gen": e_gen, "e_mem": e_mem, "shown": mapped[:n_shown].float().cpu().numpy(),
            "params": student.num_parameters()}  # fmt: skip


def teacher_student(
    teacher: MoLRG,
    sample_sizes: Sequence[int],
    widths: Sequence[int] = (64, 256),
    depth: int = 3,
    steps: int = 8000,
    n_eval: int = 256,
    sample_steps: int = 40,
    generator: torch.Generator | None = None,
    progress: bool = False,
    pool_size: int | None = None,
    n_show: int = 200,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
) -> TeacherStudent:
    """Train one :class:`~lowdim.models.MLPDenoiser` student per (width, ``N``) on the first ``N`` of ``pool_size``
    (default ``max(sample_sizes)``) teacher samples (nested training sets; VP, Adam from lr 3e-3 with cosine decay,
    batches of 256) and measure :math:`\\mathcal E_\text{gen}` and :math:`\\mathcal E_\text{mem}` on ``n_eval``
    noises (the same noises for every student). The pool and the evaluation noise's seed come from ``generator``
    (``None``: torch's global generator); each student initializes and trains from copies of the stream of
    :func:`student_seed` ``(width, N)``. So a run over some of the widths and sizes, with the same ``pool_size`` and
    generator seed, reproduces those cells. The cells are the tasks of :func:`~lowdim.experiments.engine.run_tasks`
    (``workers``, ``scheduler``, ``store``)."""
    generator = check_generator(generator)
    pool_size = check_positive_int(pool_size or max(sample_sizes), "pool_size")
    if max(sample_sizes) > pool_size:
        raise ValueError(f"pool_size must be >= max(sample_sizes) = {max(sample_sizes)}, got {pool_size}")
    pool, _ = teacher.sample(pool_size, generator=generator)
    eval_seed = spawn_seeds(generator, 1)[0]
    n_shown = min(n_show, n_eval)
    tasks = [(w, n) for w in widths for n in sample_sizes]
    cell = partial(_student_cell, teacher, pool, eval_seed, depth, steps, n_eval, sample_steps, n_shown)
    done = run_tasks(cell, tasks, workers=workers, scheduler=scheduler, store=store, progress=progress,
                     desc="teacher-student")  # fmt: skip
    shape = (len(widths), len(sample_sizes))
    e_gen = np.array([float(c["e_gen"]) for c in done]).reshape(shape)
    e_mem = np.array([float(c["e_mem"]) for c in done]).reshape(shape)
    shown = np.stack([c["shown"] for c in done]).reshape(*shape, n_shown, teacher.dim)
    params = [int(done[i * len(sample_sizes)]["params"]) for i in range(len(widths))]
    return TeacherStudent(list(widths), list(sample_sizes), params, e_gen, e_mem, shown, pool.float().cpu().numpy(),
                          eval_seed)  # fmt: skip


def generalization_errors(
    student: Denoiser, teacher: Denoiser, train: Tensor, schedule: Schedule, x_T: Tensor, steps: int = 40
) -> tuple[float, float, Tensor]:
    r""":math:`(\mathcal E_\text{gen}, \mathcal E_\text{mem})` of ``student`` from the noises ``x_T`` — PFD to ``teacher``
    and to the empirical denoiser of ``train`` — and the student's samples."""
    empirical = EmpiricalDenoiser(train).denoiser(schedule)
    mapped = {name: sample(D, x_T, schedule, steps=steps) for name, D in
              (("student", student), ("teacher", teacher), ("empirical", empirical))}  # fmt: skip
    student_map = mapped["student"]
    return rms_distance(student_map, mapped["teacher"]), rms_distance(student_map, mapped["empirical"]), student_map


def training_curve(
    teacher: MoLRG,
    train: Tensor,
    generator: torch.Generator,
    eval_generator: torch.Generator | None = None,
    width: int = 256,
    depth: int = 3,
    steps: int = 12000,
    every: int = 500,
    n_eval: int = 256,
    lr_schedule: str = "constant",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    r"""Train one student on ``train`` (Adam, lr 3e-3, ``lr_schedule``) and measure :math:`\mathcal E_\text{gen}`
    and :math:`\mathcal E_\text{mem}` every ``every`` steps on ``n_eval`` noises drawn with ``eval_generator``;
    returns ``{"steps", "e_gen", "e_mem"}`` arrays (the errors along training, the paper's "Finding II"). The
    student initializes and trains from copies of ``generator``'s stream."""
    schedule = VP()
    x_T = sample_prior(schedule, (n_eval, teacher.dim), generator=check_generator(eval_generator), dtype=train.dtype)
    teacher_D = teacher.denoiser(schedule)
    record: dict[str, list] = {"steps": [], "e_gen": [], "e_mem": []}

    def measure(step: int, model) -> None:
        if step % every == 0:
            model.eval()
            gen, mem, _ = generalization_errors(model, teacher_D, train, schedule, x_T)
            for key, value in zip(record, (step, gen, mem)):
                record[key].append(value)

    fit_denoiser(train, steps, "mlp", generator=generator, init_generator=copy_stream(generator), width=width,
                 depth=depth, lr_schedule=lr_schedule, callback=measure, progress=progress, **STUDENT)  # fmt: skip
    return {key: np.array(value) for key, value in record.items()}


def _curve_task(teacher: MoLRG, pool: Tensor, eval_seed: int, settings: dict, task: tuple[int, int]) -> dict:
    n, seed = task
    return training_curve(teacher, pool[:n], torch.Generator().manual_seed(seed),
                          eval_generator=torch.Generator().manual_seed(eval_seed), **settings)  # fmt: skip


def training_curves(
    teacher: MoLRG,
    pool: Tensor,
    runs: Sequence[tuple[int, int]],
    *,
    eval_seed: int = 0,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
    progress: bool = True,
    **settings,
) -> list[dict[str, np.ndarray]]:
    """:func:`training_curve` for each run ``(N, seed)`` of ``runs``: a student trained on ``pool[:N]`` from the
    stream of ``seed``, measured on the noises of ``eval_seed``; each run is a task of
    :func:`~lowdim.experiments.engine.run_tasks` (``workers``, ``scheduler``, ``store``). ``settings`` go to
    :func:`training_curve` (``width``, ``steps``, ``every``, ``n_eval``...). Returns the curves in the order of
    ``runs``."""
    runs = [(check_positive_int(int(n), "runs"), int(seed)) for n, seed in runs]
    if max(n for n, _ in runs) > len(pool):
        raise ValueError(f"runs: N must not exceed len(pool) = {len(pool)}")
    return run_tasks(partial(_curve_task, teacher, pool, eval_seed, settings), runs, workers=workers,
                     scheduler=scheduler, store=store, progress=progress, desc="training curves")  # fmt: skip
