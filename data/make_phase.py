"""Cache the phase-transition sweeps of the trained LowRankDAE used by chapters 6 (K = 1) and 7 (K = 2).

    .venv/bin/python data/make_phase.py            # both (K = 1: about 1 min, K = 2: about 20 min on 2 cores)
    .venv/bin/python data/make_phase.py phase_k2_dae

Writes data/<name>.npz. Rows (ranks) are seeded independently, so tests/test_data_cache.py recomputes the first
row(s) with the same settings and compares them with the files.
"""

import sys
from pathlib import Path

import torch

import lowdim as ld

GRID = dict(method="dae", d=48, ranks=list(range(1, 9)), sample_sizes=list(range(1, 16)), trials=20, steps=600)
SWEEPS = {"phase_k1_dae": dict(GRID, K=1), "phase_k2_dae": dict(GRID, K=2)}
SEED = 0


def path(name: str) -> Path:
    return Path(__file__).with_name(f"{name}.npz")


def compute(name: str, ranks: list[int] | None = None) -> ld.PhaseTransition:
    settings = dict(SWEEPS[name], ranks=ranks or SWEEPS[name]["ranks"])
    return ld.phase_transition(**settings, generator=torch.Generator().manual_seed(SEED), progress=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or SWEEPS:
        result = compute(name)
        result.save(path(name))
        print(f"wrote {path(name)}: success per (r, N) =\n{result.success}", flush=True)
