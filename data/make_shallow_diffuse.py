"""Cache chapter 11's evaluation of Shallow Diffuse watermarks on the scenes U-Net (lowdim.experiments.shallow_diffuse).

    .venv/bin/python data/make_shallow_diffuse.py               # about 55 minutes on 2 cores
    .venv/bin/python data/make_shallow_diffuse.py --workers 2   # the batches on a local Dask cluster

Writes data/shallow_diffuse.npz: N noises (seed NOISE_SEED) in batches of BATCH; each noise's clean generation and
its marked twins for every cell:
- the sweep: injection time t* in T_STARS x key band (low, high; a disc of radius RADIUS) without projection;
  t* = 1 with the low band is Tree-Ring;
- the null-space variant (the change projected off the top NULL_RANK right singular vectors of the Jacobian at
  x_t*) for both bands at NULL_T_STARS (a Jacobian SVD per image and time: the costly part);
- the frontier at t* = FRONTIER_T: other key geometries from the lowest to the highest frequencies.
Detection runs under every attack of lowdim.experiments.shallow_diffuse.ATTACKS; scene factors of every image and of
N independent clean generations (seed REFERENCE_SEED) give the distribution check. Each batch is a task
(lowdim.experiments.shallow_diffuse.watermark_study_batches); batch b's random attacks and SVD start blocks come from
seed SEED + b alone, so any number of workers gives the same file and tests/test_data_cache.py recomputes the first
images of batch 0. Finished batches are kept in data/.tasks/shallow_diffuse/ until the file is written.
"""

import time
from pathlib import Path

import torch

import lowdim as ld
from lowdim.experiments.engine import cached_model, sweep_arguments, task_store
from lowdim.experiments.shallow_diffuse import Cell, KeySpec, WatermarkStudy, watermark_study_batches

CHECKPOINT = "checkpoints/scenes_unet_n16384.pt"
N, BATCH = 200, 40
NOISE_SEED, REFERENCE_SEED, SEED = 21, 22, 0
STEPS = 25
T_STARS = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
NULL_T_STARS = [0.3, 0.5]
NULL_RANK = 20
RADIUS = 4.0
FRONTIER_T = 0.3
FRONTIER = [KeySpec("low", 2.0), KeySpec("low", 4.0, 2.0), KeySpec("low", 8.0, 4.0), KeySpec("high", 8.0)]
PATH = Path(__file__).with_name("shallow_diffuse.npz")


def cells() -> list[Cell]:
    main = [Cell(t, KeySpec(band, RADIUS)) for t in T_STARS for band in ("low", "high")]
    null = [Cell(t, KeySpec(band, RADIUS), True) for t in NULL_T_STARS for band in ("low", "high")]
    return main + null + [Cell(FRONTIER_T, key) for key in FRONTIER]


def noises(schedule, seed: int, n: int = N) -> torch.Tensor:
    return ld.sample_prior(schedule, (n, 3, 32, 32), torch.Generator().manual_seed(seed), torch.float32)


def compute(batches: list[int] | None = None, rows: int = BATCH, study_cells: list[Cell] | None = None,
            fit_factors: bool = True, **engine) -> WatermarkStudy:  # fmt: skip
    """The study on batches ``batches`` (default all), the first ``rows`` noises of each, merged; ``engine``:
    workers, scheduler, store, progress (lowdim.experiments.engine.run_tasks)."""
    schedule = cached_model(CHECKPOINT).schedule
    noise, reference = noises(schedule, NOISE_SEED), noises(schedule, REFERENCE_SEED)
    return watermark_study_batches(
        CHECKPOINT, noise, study_cells or cells(), batch_size=BATCH, seed=SEED, rows=rows,
        reference=reference if fit_factors else None, batches=batches, steps=STEPS, null_rank=NULL_RANK,
        fit_factors=fit_factors, grid_times=T_STARS, **engine,
    )  # fmt: skip


if __name__ == "__main__":
    args = sweep_arguments([PATH.stem], __doc__.splitlines()[0])
    start = time.perf_counter()
    with task_store(PATH) as store:
        study = compute(workers=args.workers, scheduler=args.scheduler, store=store, progress=args.progress)
        study.save(PATH)
    print(f"wrote {PATH} in {time.perf_counter() - start:.0f} s")
    for c, cell in enumerate(study.cells()):
        row = study.summary(c)
        print(cell, " ".join(f"{k}={v:.2f}" for k, v in row.items() if not k.startswith("tpr")))
