"""Cache chapter 4's memorization -> generalization sweep on the digits: RP and GL per capacity and N.

    .venv/bin/python data/make_reproducibility.py      # 28 networks; about 25 minutes on 2 cores

Writes data/reproducibility_digits.npz. Every network is trained by lowdim.fit_denoiser from
its own seed, so tests/test_data_cache.py retrains one cell and compares its scores with the file.
"""

from pathlib import Path

import torch

import lowdim as ld
from lowdim.experiments.reproducibility import ReproducibilitySweep, reproducibility_sweep
from lowdim.similarity import RandomFourierEmbedding

CAPACITIES = {
    "MLP-128x2": {"arch": "mlp", "width": 128, "depth": 2},
    "MLP-512x3": {"arch": "mlp", "width": 512, "depth": 3},
}
SIZES = [16, 32, 64, 128, 256, 512, 1024]
STEPS = 6000
N_EVAL = 500
COPY_RMS = 0.125  # "a copy" = within 0.125 RMS per pixel (6 % of the [-1, 1] range); chapter 4 checks the choice
PERMUTATION_SEED = 0
EMBEDDING_SEED = 0  # the random Fourier features of the copy detector
PATH = Path(__file__).with_name("reproducibility_digits.npz")


def digits_pool() -> torch.Tensor:
    """The 1,797 digits in float32, shuffled once; training sets are the first N, held-out images the last 773."""
    return ld.digits(torch.float32, shuffle=True, generator=torch.Generator().manual_seed(PERMUTATION_SEED))[0]


def embedding() -> RandomFourierEmbedding:
    return RandomFourierEmbedding(64, rms=COPY_RMS, generator=torch.Generator().manual_seed(EMBEDDING_SEED))


def compute(capacities: list[str] | None = None, sample_sizes: list[int] | None = None) -> ReproducibilitySweep:
    chosen = {name: CAPACITIES[name] for name in capacities or CAPACITIES}
    return reproducibility_sweep(
        digits_pool(), sample_sizes or SIZES, chosen, steps=STEPS, n_eval=N_EVAL, embed=embedding(), progress=True
    )


if __name__ == "__main__":
    result = compute()
    result.save(PATH)
    print(f"wrote {PATH}\nRP =\n{result.rp}\nGL =\n{result.gl}\nregimes =\n{result.regimes()}")
    print(f"training seconds per network: median {result.seconds.mean(-1).mean():.0f}, max {result.seconds.max():.0f}")
