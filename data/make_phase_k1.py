"""Cache the K = 1 phase-transition sweep of the trained LowRankDAE used by chapter 6 (about 90 s on 2 cores).

    .venv/bin/python data/make_phase_k1.py

Writes data/phase_k1_dae.npz. tests/test_data_cache.py recomputes the first rows with the same settings and
compares them with the file.
"""

from pathlib import Path

import torch

import lowdim as ld

SETTINGS = dict(method="dae", d=48, K=1, ranks=list(range(1, 9)), sample_sizes=list(range(1, 16)), trials=20, steps=600)
SEED = 0
PATH = Path(__file__).with_name("phase_k1_dae.npz")


def compute(ranks=None):
    settings = dict(SETTINGS, ranks=ranks or SETTINGS["ranks"])
    return ld.phase_transition(**settings, generator=torch.Generator().manual_seed(SEED), progress=True)


if __name__ == "__main__":
    result = compute()
    result.save(PATH)
    print(f"wrote {PATH}: success per (r, N) =\n{result.success}")
