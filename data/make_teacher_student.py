"""Cache chapter 9's teacher-student sweep: E_gen and E_mem (probability flow distances) of MLP students trained on
N samples of an exact MoLRG teacher.

    .venv/bin/python data/make_teacher_student.py      # 16 students + 5 training curves; about 20 minutes on 2 cores
    .venv/bin/python data/make_teacher_student.py --only teacher_student --workers 2     # the students on Dask

Writes data/teacher_student.npz and data/teacher_student_curves.npz (atomically). Each student (width, N) is a
task seeded by its width and N, and all share the evaluation noise, so any number of workers gives the same file;
finished students are kept in data/.tasks/teacher_student/ until the file is written, so an interrupted run
resumes. tests/test_data_cache.py retrains the extreme cells and compares them with the file. The training curves
are tasks too: one width-256 student per size in CURVES (data/teacher_student_curves.npz), and REPLICATES more at
N = 128 from other seeds, same training set and evaluation noise (data/teacher_student_replicates.npz: is the early
minimum of E_gen at N = 128 more than one run's noise?).
"""

from pathlib import Path

import numpy as np
import torch

import lowdim as ld
from lowdim.experiments.engine import sweep_arguments, task_store
from lowdim.experiments.results import write_npz_atomic
from lowdim.experiments.students import TeacherStudent, teacher_student, training_curves

TEACHER = dict(d=32, K=2, r=4)
SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
WIDTHS = [64, 256]
SETTINGS = dict(depth=3, steps=6000, n_eval=256)
SEED = 0
CURVES = dict(sizes=[16, 128, 1024], width=256, steps=12000, every=500)  # errors along training ("Finding II")
PATH = Path(__file__).with_name("teacher_student.npz")
CURVES_PATH = Path(__file__).with_name("teacher_student_curves.npz")
REPLICATES = dict(size=128, seeds=[1128, 2128, 3128, 4128])  # seed n made the curve of size n in CURVES_PATH
REPLICATES_PATH = Path(__file__).with_name("teacher_student_replicates.npz")


def teacher() -> ld.MoLRG:
    return ld.random_molrg(**TEACHER, generator=torch.Generator().manual_seed(SEED), dtype=torch.float32)


def compute(widths: list[int] | None = None, sample_sizes: list[int] | None = None, **run) -> TeacherStudent:
    """The sweep for a subset of ``widths`` and ``sizes``; the pool always holds max(SIZES) samples. ``run``:
    ``workers``, ``scheduler``, ``store``, ``progress`` of :func:`~lowdim.experiments.engine.run_tasks`."""
    return teacher_student(
        teacher(), sample_sizes or SIZES, widths or WIDTHS, generator=torch.Generator().manual_seed(SEED + 1),
        pool_size=max(SIZES), **SETTINGS, **run,
    )  # fmt: skip


def compute_curves(
    runs: list[tuple[int, int]] | None = None, steps: int | None = None, **engine
) -> dict[str, np.ndarray]:
    """E_gen and E_mem every CURVES["every"] steps for students trained on the first N of the sweep's pool from the
    stream of ``seed``, for each ``(N, seed)`` of ``runs`` (default: seed N for each size of CURVES), keyed
    ``{steps, e_gen, e_mem}_<N>`` (``_<N>_s<seed>`` when the seed is not N); ``engine``: workers, scheduler, store,
    progress (lowdim.experiments.engine.run_tasks)."""
    pool, _ = teacher().sample(max(SIZES), generator=torch.Generator().manual_seed(SEED + 1))
    runs = runs or [(n, n) for n in CURVES["sizes"]]
    curves = training_curves(teacher(), pool, runs, eval_seed=0, width=CURVES["width"], steps=steps or CURVES["steps"],
                             every=CURVES["every"], n_eval=SETTINGS["n_eval"], **engine)  # fmt: skip
    out = {}
    for (n, seed), curve in zip(runs, curves):
        suffix = f"{n}" if seed == n else f"{n}_s{seed}"
        out.update({f"{key}_{suffix}": value for key, value in curve.items()})
    return out


if __name__ == "__main__":
    args = sweep_arguments([CURVES_PATH.stem, REPLICATES_PATH.stem, PATH.stem], __doc__.splitlines()[0])
    engine = dict(workers=args.workers, scheduler=args.scheduler, progress=args.progress)
    replicates = [(REPLICATES["size"], seed) for seed in REPLICATES["seeds"]]
    for path, runs in ((CURVES_PATH, None), (REPLICATES_PATH, replicates)):
        if path.stem in args.only:
            with task_store(path) as store:
                write_npz_atomic(path, compute_curves(runs, store=store, **engine))
            print(f"wrote {path}")
    if PATH.stem in args.only:
        with task_store(PATH) as store:
            result = compute(store=store, **engine)
            result.save(PATH)
        print(f"wrote {PATH}\nE_gen =\n{result.e_gen}\nE_mem =\n{result.e_mem}\ncrossover N = {result.crossover()}")
