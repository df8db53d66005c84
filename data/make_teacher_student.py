"""Cache chapter 9's teacher-student sweep: E_gen and E_mem (probability flow distances) of MLP students trained on
N samples of an exact MoLRG teacher.

    .venv/bin/python data/make_teacher_student.py      # 16 students + 3 training curves; about 12 minutes on 2 cores
    .venv/bin/python data/make_teacher_student.py --only teacher_student --workers 2     # the students on Dask

Writes data/teacher_student.npz and data/teacher_student_curves.npz (atomically). Each student (width, N) is a
task seeded by its width and N, and all share the evaluation noise, so any number of workers gives the same file;
finished students are kept in data/.tasks/teacher_student/ until the file is written, so an interrupted run
resumes. tests/test_data_cache.py retrains the extreme cells and compares them with the file. The three training
curves run serially (--only teacher_student_curves).
"""

import shutil
from pathlib import Path

import numpy as np
import torch

import lowdim as ld
from lowdim.experiments.engine import sweep_arguments
from lowdim.experiments.results import write_npz_atomic
from lowdim.experiments.students import TeacherStudent, teacher_student, training_curve

TEACHER = dict(d=32, K=2, r=4)
SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
WIDTHS = [64, 256]
SETTINGS = dict(depth=3, steps=6000, n_eval=256)
SEED = 0
CURVES = dict(sizes=[16, 128, 1024], width=256, steps=12000, every=500)  # errors along training ("Finding II")
PATH = Path(__file__).with_name("teacher_student.npz")
CURVES_PATH = Path(__file__).with_name("teacher_student_curves.npz")


def teacher() -> ld.MoLRG:
    return ld.random_molrg(**TEACHER, generator=torch.Generator().manual_seed(SEED), dtype=torch.float32)


def compute(widths: list[int] | None = None, sample_sizes: list[int] | None = None, **run) -> TeacherStudent:
    """The sweep for a subset of ``widths`` and ``sizes``; the pool always holds max(SIZES) samples. ``run``:
    ``workers``, ``scheduler``, ``store``, ``progress`` of :func:`~lowdim.experiments.engine.run_tasks`."""
    return teacher_student(
        teacher(), sample_sizes or SIZES, widths or WIDTHS, generator=torch.Generator().manual_seed(SEED + 1),
        pool_size=max(SIZES), **SETTINGS, **run,
    )  # fmt: skip


def compute_curves(sizes: list[int] | None = None, steps: int | None = None) -> dict[str, np.ndarray]:
    """E_gen and E_mem every CURVES["every"] steps for students trained on the first N of the sweep's pool."""
    pool, _ = teacher().sample(max(SIZES), generator=torch.Generator().manual_seed(SEED + 1))
    out = {}
    for n in sizes or CURVES["sizes"]:
        curve = training_curve(teacher(), pool[:n], width=CURVES["width"], steps=steps or CURVES["steps"],
                               every=CURVES["every"], n_eval=SETTINGS["n_eval"], progress=True,
                               generator=torch.Generator().manual_seed(n), eval_generator=torch.Generator().manual_seed(0))  # fmt: skip
        out.update({f"{key}_{n}": value for key, value in curve.items()})
    return out


if __name__ == "__main__":
    args = sweep_arguments([CURVES_PATH.stem, PATH.stem], __doc__.splitlines()[0])
    if CURVES_PATH.stem in args.only:
        write_npz_atomic(CURVES_PATH, compute_curves())
        print(f"wrote {CURVES_PATH}")
    if PATH.stem in args.only:
        store = PATH.with_name(".tasks") / PATH.stem
        result = compute(workers=args.workers, scheduler=args.scheduler, store=store, progress=args.progress)
        result.save(PATH)
        shutil.rmtree(store)
        print(f"wrote {PATH}\nE_gen =\n{result.e_gen}\nE_mem =\n{result.e_mem}\ncrossover N = {result.crossover()}")
