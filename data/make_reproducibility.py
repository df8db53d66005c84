"""Cache chapter 4's memorization -> generalization sweep on the digits: RP and GL per capacity and N.

    .venv/bin/python data/make_reproducibility.py --only reproducibility_digits   # 28 networks; 25 minutes on 2 cores
    .venv/bin/python data/make_reproducibility.py --workers 2   # all three seed pairs, one network per task (Dask)

Writes data/reproducibility_digits.npz (networks of seeds 0 and 1) and two replicates with other seed pairs,
data/reproducibility_digits_seeds23.npz and _seeds45.npz (same data, same sampling noise), atomically. Every network is a task trained by lowdim.fit_denoiser from
its own seed, so any number of workers gives the same file; finished networks are kept in
data/.tasks/reproducibility_digits/ until the file is written. tests/test_data_cache.py retrains one cell and
compares its scores with the file.
"""

from pathlib import Path

import numpy as np
import torch

import lowdim as ld
from lowdim.experiments.engine import sweep_arguments, task_store
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
SEED_PAIRS = {"reproducibility_digits": (0, 1), "reproducibility_digits_seeds23": (2, 3),
              "reproducibility_digits_seeds45": (4, 5)}  # fmt: skip
PATH = Path(__file__).with_name("reproducibility_digits.npz")


def digits_pool() -> torch.Tensor:
    """The 1,797 digits in float32, shuffled once; training sets are the first N, held-out images the last 773."""
    return ld.digits(torch.float32, shuffle=True, generator=torch.Generator().manual_seed(PERMUTATION_SEED))[0]


def embedding() -> RandomFourierEmbedding:
    return RandomFourierEmbedding(64, rms=COPY_RMS, generator=torch.Generator().manual_seed(EMBEDDING_SEED))


def compute(capacities: list[str] | None = None, sample_sizes: list[int] | None = None, seeds: tuple[int, int] = (0, 1),
            **run) -> ReproducibilitySweep:  # fmt: skip
    chosen = {name: CAPACITIES[name] for name in capacities or CAPACITIES}
    return reproducibility_sweep(
        digits_pool(), sample_sizes or SIZES, chosen, steps=STEPS, n_eval=N_EVAL, embed=embedding(), seeds=seeds, **run
    )


if __name__ == "__main__":
    args = sweep_arguments(list(SEED_PAIRS), __doc__.splitlines()[0])
    for name in args.only:
        path = PATH.with_name(f"{name}.npz")
        with task_store(path) as store:
            result = compute(seeds=SEED_PAIRS[name], workers=args.workers, scheduler=args.scheduler, store=store,
                             progress=args.progress)  # fmt: skip
            result.save(path)
        print(f"wrote {path}\nRP =\n{result.rp}\nGL =\n{result.gl}\nregimes =\n{result.regimes()}")
        seconds = result.seconds
        print(f"training seconds per network: median {float(np.median(seconds)):.0f}, max {seconds.max():.0f}")
