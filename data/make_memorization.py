"""Cache the memorization -> generalization sweep of a trained MLP denoiser on MoLRG data used by chapter 7.

    .venv/bin/python data/make_memorization.py --only memorization_k2   # one network per (r, N) cell; 37 min, 2 cores
    .venv/bin/python data/make_memorization.py --workers 2   # all three seeds' cells on a local Dask cluster

Writes data/memorization_k2.npz (seed 0) and the replicates data/memorization_k2_seed1.npz and _seed2.npz (new
subspaces, data and networks from seeds 1 and 2), atomically. Each cell (rank, N) is a task seeded by its own seed, so any number of
workers gives the same file; finished cells are kept in data/.tasks/memorization_k2/ until the file is written, so
an interrupted run resumes. tests/test_data_cache.py recomputes one cell and compares it with the file.
"""

from pathlib import Path

import torch

from lowdim.experiments.engine import sweep_arguments, task_store
from lowdim.experiments.memorization import MemorizationSweep, memorization_sweep

SETTINGS = dict(d=48, K=2, ranks=[1, 2, 4], sample_sizes=[2, 4, 8, 16, 32, 64, 128], steps=16000, n_samples=200)
SEED = 0
SEEDS = {"memorization_k2": 0, "memorization_k2_seed1": 1, "memorization_k2_seed2": 2}
PATH = Path(__file__).with_name("memorization_k2.npz")


def compute(ranks: list[int] | None = None, sample_sizes: list[int] | None = None, seed: int = SEED,
            **run) -> MemorizationSweep:  # fmt: skip
    settings = dict(SETTINGS, ranks=ranks or SETTINGS["ranks"], sample_sizes=sample_sizes or SETTINGS["sample_sizes"])
    generator = torch.Generator().manual_seed(seed)
    return memorization_sweep(**settings, n_pool=max(SETTINGS["sample_sizes"]), generator=generator, **run)


if __name__ == "__main__":
    args = sweep_arguments(list(SEEDS), __doc__.splitlines()[0])
    for name in args.only:
        path = PATH.with_name(f"{name}.npz")
        with task_store(path) as store:
            result = compute(seed=SEEDS[name], workers=args.workers, scheduler=args.scheduler, store=store,
                             progress=args.progress)  # fmt: skip
            result.save(path)
        print(
            f"wrote {path}: memorized fraction per (r, N) =\n{result.memorized}\nmedian residual =\n{result.residual}"
        )
