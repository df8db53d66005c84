"""Cache chapter 8's Jacobian spectra of the shapes U-Net (d = 3072): all singular values of the full denoiser
Jacobian at TIMES along the PF-ODE trajectories of DRAWS noises, so the chapter can read off the rank by energy at any
energy level. A full Jacobian + SVD at d = 3072 takes about 20 s on one core: 44 of them are too long for a page.

    .venv/bin/python data/make_jacobian_ranks.py               # about 15 minutes on 2 cores (44 full Jacobians)
    .venv/bin/python data/make_jacobian_ranks.py --workers 2   # one time (DRAWS points) per task, local Dask cluster

Writes data/jacobian_spectra.npz (atomically). The trajectory states are computed first, here (they are
deterministic); each time is then a task (lowdim.experiments.jacobian_rank.jacobian_spectra), kept in
data/.tasks/jacobian_spectra/ until the file is written. tests/test_data_cache.py recomputes one point and compares
its singular values.
"""

from pathlib import Path

import numpy as np
import torch

import lowdim as ld
from lowdim.experiments.engine import cached_model, sweep_arguments, task_store
from lowdim.experiments.jacobian_rank import jacobian_spectra, trajectory_points
from lowdim.experiments.results import write_npz_atomic

CHECKPOINT = "checkpoints/shapes_unet_n8192.pt"
TIMES = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
DRAWS = 4
SEED = 0
CHUNK = 512  # Jacobian rows per batched reverse pass
PATH = Path(__file__).with_name("jacobian_spectra.npz")


def points() -> torch.Tensor:
    """States ``(len(TIMES), DRAWS, 3, 32, 32)`` of the PF-ODE trajectories of the network from DRAWS noises of seed
    SEED."""
    x_T = ld.sample_prior(
        ld.VP(), (DRAWS, 3, 32, 32), generator=torch.Generator().manual_seed(SEED), dtype=torch.float32
    )
    return trajectory_points(cached_model(CHECKPOINT), x_T, torch.tensor(TIMES), ld.VP())


def compute(times: list[int] | None = None, **engine) -> tuple[np.ndarray, np.ndarray]:
    """Singular values ``(T, DRAWS, d)`` at the indices ``times`` of TIMES (default all) and seconds ``(T,)``;
    ``engine``: workers, scheduler, store, progress (lowdim.experiments.engine.run_tasks)."""
    chosen = list(range(len(TIMES))) if times is None else times
    states = points()[chosen]
    return jacobian_spectra(CHECKPOINT, states, [TIMES[i] for i in chosen], chunk_size=CHUNK, **engine)


if __name__ == "__main__":
    args = sweep_arguments([PATH.stem], __doc__.splitlines()[0])
    with task_store(PATH) as store:
        spectra, seconds = compute(workers=args.workers, scheduler=args.scheduler, store=store, progress=args.progress)
        write_npz_atomic(PATH, {"times": np.array(TIMES), "singular_values": spectra.astype(np.float32),
                                "seconds": np.float64(seconds.sum())})  # fmt: skip
    ranks = ld.effective_rank(torch.as_tensor(spectra)).numpy()
    print(f"wrote {PATH} ({seconds.sum():.0f} s of Jacobians); ranks by 0.99 energy per time:\n{ranks.T}")
