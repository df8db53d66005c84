"""Cache the memorization -> generalization sweep of a trained MLP denoiser on MoLRG data used by chapter 7.

    .venv/bin/python data/make_memorization.py               # one network per (r, N) cell; about 15 minutes on 2 cores
    .venv/bin/python data/make_memorization.py --workers 2   # the cells on a local Dask cluster (or --scheduler ADDRESS)

Writes data/memorization_k2.npz (atomically). Each cell (rank, N) is a task seeded by its own seed, so any number of
workers gives the same file; finished cells are kept in data/.tasks/memorization_k2/ until the file is written, so
an interrupted run resumes. tests/test_data_cache.py recomputes one cell and compares it with the file.
"""

import shutil
from pathlib import Path

import torch

from lowdim.experiments.engine import sweep_arguments
from lowdim.experiments.memorization import MemorizationSweep, memorization_sweep

SETTINGS = dict(d=48, K=2, ranks=[1, 2, 4], sample_sizes=[2, 4, 8, 16, 32, 64, 128], steps=16000, n_samples=200)
SEED = 0
PATH = Path(__file__).with_name("memorization_k2.npz")


def compute(ranks: list[int] | None = None, sample_sizes: list[int] | None = None, **run) -> MemorizationSweep:
    settings = dict(SETTINGS, ranks=ranks or SETTINGS["ranks"], sample_sizes=sample_sizes or SETTINGS["sample_sizes"])
    generator = torch.Generator().manual_seed(SEED)
    return memorization_sweep(**settings, n_pool=max(SETTINGS["sample_sizes"]), generator=generator, **run)


if __name__ == "__main__":
    args = sweep_arguments([PATH.stem], __doc__.splitlines()[0])
    store = PATH.with_name(".tasks") / PATH.stem
    result = compute(workers=args.workers, scheduler=args.scheduler, store=store, progress=args.progress)
    result.save(PATH)
    shutil.rmtree(store)
    print(f"wrote {PATH}: memorized fraction per (r, N) =\n{result.memorized}\nmedian residual =\n{result.residual}")
