"""Cache chapter 8's Jacobian spectra of the shapes U-Net (d = 3072): all singular values of the full denoiser
Jacobian at TIMES along the PF-ODE trajectories of DRAWS noises, so the chapter can read off the rank by energy at any
energy level. A full Jacobian + SVD at d = 3072 takes about 20 s on one core: 44 of them are too long for a page.

    .venv/bin/python data/make_jacobian_ranks.py      # about 15 minutes on 2 cores (44 full Jacobians)

Writes data/jacobian_spectra.npz. Each point is computed on its own (trajectory states are deterministic), so
tests/test_data_cache.py recomputes one point and compares its singular values.
"""

import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import lowdim as ld
from lowdim.experiments.jacobian_rank import trajectory_points

CHECKPOINT = "checkpoints/shapes_unet_n8192.pt"
TIMES = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
DRAWS = 4
SEED = 0
CHUNK = 512  # Jacobian rows per batched reverse pass
PATH = Path(__file__).with_name("jacobian_spectra.npz")


def model() -> ld.UNetDenoiser:
    return ld.load_checkpoint(ld.data_path(CHECKPOINT))[0]


def points(D) -> torch.Tensor:
    """States ``(len(TIMES), DRAWS, 3, 32, 32)`` of the PF-ODE trajectories of ``D`` from DRAWS noises of seed SEED."""
    x_T = ld.sample_prior(
        ld.VP(), (DRAWS, 3, 32, 32), generator=torch.Generator().manual_seed(SEED), dtype=torch.float32
    )
    return trajectory_points(D, x_T, torch.tensor(TIMES), ld.VP())


def spectrum(D, x: torch.Tensor, t: float) -> np.ndarray:
    """Singular values ``(B, d)`` (float64 SVD of the float32 Jacobian) at the items of ``x``."""
    return torch.linalg.svdvals(ld.jacobian(D, x, t, chunk_size=CHUNK).double()).numpy()


if __name__ == "__main__":
    D = model()
    states = points(D)
    start, spectra = time.perf_counter(), []
    for i, t in enumerate(tqdm(TIMES, desc="full Jacobians")):
        spectra.append(spectrum(D, states[i], t))
    seconds = time.perf_counter() - start
    np.savez_compressed(
        PATH, times=np.array(TIMES), singular_values=np.stack(spectra).astype(np.float32), seconds=seconds
    )
    ranks = ld.effective_rank(torch.as_tensor(np.stack(spectra))).numpy()
    print(f"wrote {PATH} in {seconds:.0f} s; ranks by 0.99 energy per time:\n{ranks.T}")
