"""Cache the memorization -> generalization sweep of a trained MLP denoiser on MoLRG data used by chapter 7.

    .venv/bin/python data/make_memorization.py     # one network per (r, N) cell; about 15 minutes on 2 cores

Writes data/memorization_k2.npz. Rows (ranks) are seeded independently and each cell's network by its own
seed, so tests/test_data_cache.py recomputes one cell with the same settings and compares it with the file.
"""

from pathlib import Path

import torch

from lowdim.experiments.memorization import MemorizationSweep, memorization_sweep

SETTINGS = dict(d=48, K=2, ranks=[1, 2, 4], sample_sizes=[2, 4, 8, 16, 32, 64, 128], steps=16000, n_samples=200)
SEED = 0
PATH = Path(__file__).with_name("memorization_k2.npz")


def compute(ranks: list[int] | None = None, sample_sizes: list[int] | None = None) -> MemorizationSweep:
    settings = dict(SETTINGS, ranks=ranks or SETTINGS["ranks"], sample_sizes=sample_sizes or SETTINGS["sample_sizes"])
    generator = torch.Generator().manual_seed(SEED)
    return memorization_sweep(**settings, n_pool=max(SETTINGS["sample_sizes"]), generator=generator, progress=True)


if __name__ == "__main__":
    result = compute()
    result.save(PATH)
    print(f"wrote {PATH}: memorized fraction per (r, N) =\n{result.memorized}\nmedian residual =\n{result.residual}")
