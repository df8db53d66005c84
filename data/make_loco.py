"""Cache chapter 10's evaluation of LOCO edits on the two-object scenes U-Net (lowdim.experiments.loco).

    .venv/bin/python data/make_loco.py                  # the sweep, then the held-out evaluation: about 40 minutes
    .venv/bin/python data/make_loco.py --only loco_sweep         # just the sweep (tuning scenes)
    .venv/bin/python data/make_loco.py --only loco_evaluation --workers 2   # batches on a local Dask cluster

1. The sweep (data/loco_sweep.npz) chooses the settings on TUNE_N tuning scenes (seed TUNE_SEED): edit time t,
   null-space rank r' and step lambda for the top direction (v1, both signs), and, at r' = 20, the same for
   directions v2..v5 (how many directions are worth offering: r); EditStudy.best_settings states the rule.
2. The held-out evaluation (data/loco_evaluation.npz) runs the chosen settings on EVAL_N other scenes (seed
   EVAL_SEED): LOCO directions v1..v3 at +-lambda*, +-2 lambda*, the three baselines, composition v1 + v2 and transfer
   to partner scenes, plus the per-image times of learning directions and of a transfer edit.

Scenes are processed in batches of BATCH, each a task (lowdim.experiments.loco.edit_study_batches); batch b's SVD
start blocks and random directions come from the stream of seed SEED + b alone, so any number of workers gives the
same file and tests/test_data_cache.py recomputes the first batch of each file and compares. Finished batches are
kept in data/.tasks/<name>/ until the file is written.
"""

import time
from pathlib import Path

import numpy as np
import torch

import lowdim as ld
from lowdim.experiments.engine import cached_model, sweep_arguments, task_store
from lowdim.experiments.loco import EditSpec, EditStudy, edit_study_batches, time_edit, transfer_partners

CHECKPOINT = "checkpoints/scenes_unet_n16384.pt"
SEED = 0
BATCH = 8
TUNE_SEED, TUNE_N = 2, 16
EVAL_SEED, EVAL_N = 3, 120
PARTNER_SEED = 4
TIMES = [0.3, 0.5, 0.7]
NULL_RANKS = [0, 5, 10, 20]
LAMBDAS = [1.0, 2.0, 4.0]
RANK = 5
TIMED_IMAGES = 4
SWEEP_PATH = Path(__file__).with_name("loco_sweep.npz")
EVAL_PATH = Path(__file__).with_name("loco_evaluation.npz")


def scene_set(seed: int, n: int):
    """``n`` scenes of seed ``seed`` (float32) and the object to edit in each (alternating 0, 1)."""
    x0, latents = ld.scenes(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
    return x0, latents, torch.arange(n) % 2


def sweep_specs() -> list[EditSpec]:
    specs = []
    for t in TIMES:
        for lam in LAMBDAS:
            for sign in (1, -1):
                specs += [EditSpec("loco", t, r, sign * lam, 0) for r in NULL_RANKS]
                specs += [EditSpec("loco", t, 20, sign * lam, j) for j in range(1, RANK)]
    return specs


def evaluation_specs(t: float, null_rank: int, lam: float, rank: int = 3) -> list[EditSpec]:
    specs = [EditSpec("loco", t, null_rank, s * lam, j) for j in range(rank) for s in (1, -1, 2, -2)]
    for s in (1, -1):
        specs += [EditSpec("masked", t, 0, s * lam), EditSpec("unmasked", t, 0, s * lam),
                  EditSpec("random", t, null_rank, s * lam), EditSpec("transfer", t, null_rank, s * lam)]  # fmt: skip
    return [*specs, EditSpec("compose", t, null_rank, lam, 0)]


def run(seed: int, n: int, specs: list[EditSpec], batches: list[int] | None = None, **engine) -> EditStudy:
    """The study of ``specs`` on scene set ``seed`` in batches of BATCH (only ``batches`` if given), merged;
    ``engine``: workers, scheduler, store, progress (lowdim.experiments.engine.run_tasks)."""
    x0, latents, target = scene_set(seed, n)
    partners = transfer_partners(latents, target, torch.Generator().manual_seed(PARTNER_SEED))
    return edit_study_batches(CHECKPOINT, x0, latents, target, specs, batch_size=BATCH, seed=SEED, rank=RANK,
                              partners=partners, batches=batches, **engine)  # fmt: skip


def compute_sweep(batches: list[int] | None = None, **engine) -> EditStudy:
    return run(TUNE_SEED, TUNE_N, sweep_specs(), batches, **engine)


def compute_evaluation(settings: dict, batches: list[int] | None = None, **engine) -> EditStudy:
    specs = evaluation_specs(settings["t"], settings["null_rank"], settings["lam"])
    study = run(EVAL_SEED, EVAL_N, specs, batches, **engine)
    x0, latents, target = scene_set(EVAL_SEED, TIMED_IMAGES)
    study.seconds_directions, study.seconds_edit = time_edit(  # timed here, one image at a time, never on a worker
        cached_model(CHECKPOINT), x0, latents, target, settings["t"], settings["null_rank"], settings["lam"], rank=RANK,
        generator=torch.Generator().manual_seed(SEED),
    )  # fmt: skip
    return study


if __name__ == "__main__":
    args = sweep_arguments([SWEEP_PATH.stem, EVAL_PATH.stem], __doc__.splitlines()[0])
    for name, path in ((SWEEP_PATH.stem, SWEEP_PATH), (EVAL_PATH.stem, EVAL_PATH)):
        if name not in args.only:
            continue
        start = time.perf_counter()
        with task_store(path) as store:
            engine = dict(workers=args.workers, scheduler=args.scheduler, store=store, progress=args.progress)
            if path == SWEEP_PATH:
                study = compute_sweep(**engine)
            else:
                settings = EditStudy.load(SWEEP_PATH).best_settings()
                print("chosen settings:", settings)
                study = compute_evaluation(settings, **engine)
            study.save(path)
        print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    if EVAL_PATH.exists():
        study = EditStudy.load(EVAL_PATH)
        for method in ("loco", "masked", "unmasked", "random"):
            rows = study.rows(method=method, lam=float(np.abs(study.lam).min()))
            rows = np.union1d(rows, study.rows(method=method, lam=-float(np.abs(study.lam).min())))
            print(f"{method:9s} local edit success {study.success_rate(rows):.2f}")
