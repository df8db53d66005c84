"""Cache the phase-transition sweeps of the trained LowRankDAE used by chapters 6 (K = 1) and 7 (K = 2).

    .venv/bin/python data/make_phase.py                       # both, serially (K = 1: about 1 min, K = 2: about 20 min
                                                              # on 2 cores)
    .venv/bin/python data/make_phase.py --only phase_k2_dae --workers 2          # a local Dask cluster, 2 workers
    .venv/bin/python data/make_phase.py --scheduler tcp://host:8786              # an existing cluster

Writes data/<name>.npz (atomically). Rows (ranks) are the tasks, each seeded from the sweep's generator by its
index, so any number of workers gives the same file; finished rows are kept in data/.tasks/<name>/ as they complete,
so an interrupted run resumes where it stopped (the folder is removed once the file is written).
tests/test_data_cache.py recomputes the first row(s) with the same settings and compares them with the files.
"""

from pathlib import Path

import torch

import lowdim as ld
from lowdim.experiments.engine import sweep_arguments, task_store

GRID = dict(method="dae", d=48, ranks=list(range(1, 9)), sample_sizes=list(range(1, 16)), trials=20, steps=600)
SWEEPS = {"phase_k1_dae": dict(GRID, K=1), "phase_k2_dae": dict(GRID, K=2)}
SEED = 0


def path(name: str) -> Path:
    return Path(__file__).with_name(f"{name}.npz")


def compute(name: str, ranks: list[int] | None = None, **run) -> ld.PhaseTransition:
    settings = dict(SWEEPS[name], ranks=ranks or SWEEPS[name]["ranks"])
    return ld.phase_transition(**settings, generator=torch.Generator().manual_seed(SEED), **run)


if __name__ == "__main__":
    args = sweep_arguments(list(SWEEPS), __doc__.splitlines()[0])
    for name in args.only:
        with task_store(path(name)) as store:
            result = compute(name, workers=args.workers, scheduler=args.scheduler, store=store, progress=args.progress)
            result.save(path(name))
        print(f"wrote {path(name)}: success per (r, N) =\n{result.success}", flush=True)
