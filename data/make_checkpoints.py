"""Train and save the image denoisers the chapters load: for chapter 4 an MLP and a U-Net, each on N = 16
(memorization) and N = 1024 (generalization) digits; for chapter 8 a U-Net on 32x32 RGB shapes (d = 3072); for the
editing and watermarking chapters a wider U-Net on 32x32 two-object scenes (lowdim.scenes).

    .venv/bin/python data/make_checkpoints.py            # six networks; about 30 minutes on 2 cores
    .venv/bin/python data/make_checkpoints.py --only digits_mlp_n16   # just one
    .venv/bin/python data/make_checkpoints.py --workers 2             # one network per task, local Dask cluster

Writes data/checkpoints/<name>.pt (lowdim.checkpoints format, loaded with weights_only=True). Each checkpoint's
meta holds its training time and SAMPLES samples drawn from noise seed SAMPLE_SEED right after training, so a
test can check that loading it and sampling again reproduces them bit for bit. A task trains one network and returns
the checkpoint file's bytes, which this process writes (atomically): nothing is written on a worker's disk.
"""

import io
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from make_reproducibility import PERMUTATION_SEED, STEPS, digits_pool

import lowdim as ld
from lowdim.experiments.engine import run_tasks, sweep_arguments
from lowdim.experiments.reproducibility import draw_samples
from lowdim.factors import fit_scene_factors

MODELS = {
    "digits_mlp_n16": {"n_train": 16, "arch": "mlp", "width": 512, "depth": 3},
    "digits_mlp_n1024": {"n_train": 1024, "arch": "mlp", "width": 512, "depth": 3},
    "digits_unet_n16": {"n_train": 16, "arch": "unet", "channels": (16, 32), "steps": 4000, "batch_size": 128},
    "digits_unet_n1024": {"n_train": 1024, "arch": "unet", "channels": (16, 32), "steps": 4000, "batch_size": 128},
    "shapes_unet_n8192": {
        "data": "shapes",
        "n_train": 8192,
        "arch": "unet",
        "channels": (16, 32, 32),
        "steps": 2800,
        "batch_size": 32,
        "lr": 3e-3,
        "ema_decay": 0.998,
    },
    # The editing network: crisp two-object samples (at least CRISP_FRACTION explained by a fitted scene to CRISP) need
    # a wider U-Net and training weighted to low noise (log-normal sigma). Uniform t with the same network and steps
    # drew soft, mottled objects (median residual 0.116, 22 % under 0.1); log-normal sigma: 0.083, 72 %.
    "scenes_unet_n16384": {
        "data": "scenes",
        "n_train": 16384,
        "arch": "unet",
        "channels": (32, 64, 64),
        "steps": 3400,
        "batch_size": 32,
        "lr": 2e-3,
        "noise": "lognormal",
        "budget_seconds": 900,  # a wider, longer-trained network: up to 15 minutes
    },
}  # a U-Net step costs 9x an MLP step: 4,000 steps of 128 images keep it under 5 minutes (shapes: 2,800 of 32)
SHAPES_SEED = (
    0  # the shapes training set is lowdim.shapes(n_train, generator=torch.Generator().manual_seed(SHAPES_SEED))
)
SCENES_SEED = (
    0  # the scenes training set is lowdim.scenes(n_train, generator=torch.Generator().manual_seed(SCENES_SEED))
)
SEED = 0
SAMPLE_SEED = 2024
SAMPLES = 16
FOLDER = Path(__file__).with_name("checkpoints")


def training_set(name: str) -> torch.Tensor:
    """The images ``name`` trains on: the first n_train of the shuffled digits, or n_train shapes or scenes
    (float32)."""
    n_train = MODELS[name]["n_train"]
    if MODELS[name].get("data") == "shapes":
        return ld.shapes(n_train, generator=torch.Generator().manual_seed(SHAPES_SEED), dtype=torch.float32)[0]
    if MODELS[name].get("data") == "scenes":
        return ld.scenes(n_train, generator=torch.Generator().manual_seed(SCENES_SEED), dtype=torch.float32)[0]
    return digits_pool()[:n_train]


def train(name: str):
    """Train ``name`` from MODELS (EMA 0.999 unless it says otherwise); returns ``(model, seconds)``."""
    settings = {"ema_decay": 0.999, **MODELS[name]}
    settings.pop("n_train"), settings.pop("data", None), settings.pop("budget_seconds", None)
    steps = settings.pop("steps", STEPS)
    start = time.perf_counter()
    model = ld.fit_denoiser(training_set(name), steps, generator=torch.Generator().manual_seed(SEED),
                            init_generator=torch.Generator().manual_seed(SEED), progress=True, **settings)  # fmt: skip
    return model, time.perf_counter() - start


IMAGE_SHAPES = {"digits": (1, 8, 8), "shapes": (3, 32, 32), "scenes": (3, 32, 32)}


def reference_samples(model, data: str = "digits") -> torch.Tensor:
    return draw_samples(model, IMAGE_SHAPES[data], SAMPLES, torch.Generator().manual_seed(SAMPLE_SEED))


QUALITY_SAMPLES = 64  # scenes: samples whose factors are fitted to measure how crisp the network draws
CRISP = (
    0.1  # a sample is a crisp scene when the fitted scene explains it to this RMS residual per pixel ([-1, 1] units)
)
CRISP_FRACTION = 0.5  # ... and most samples must be (tests/test_data_cache.py)


def sample_quality(model, n: int = QUALITY_SAMPLES) -> torch.Tensor:
    """RMS residual per pixel of the two-object scene fitted to each of ``n`` samples (noise seed SAMPLE_SEED + 1):
    small where the network draws two crisp objects (lowdim.factors.fit_scene_factors)."""
    samples = draw_samples(model, IMAGE_SHAPES["scenes"], n, torch.Generator().manual_seed(SAMPLE_SEED + 1))
    return fit_scene_factors(samples.clamp(-1, 1)).residual.float()


def checkpoint_bytes(name: str) -> dict[str, np.ndarray]:
    """Train ``name``, sample it and return its checkpoint file (lowdim.save_checkpoint) as bytes: one task."""
    model, seconds = train(name)
    extra = {"sample_residual": sample_quality(model)} if MODELS[name].get("data") == "scenes" else {}
    buffer = io.BytesIO()
    ld.save_checkpoint(
        buffer, model, data=MODELS[name].get("data", "digits"), n_train=MODELS[name]["n_train"],
        permutation_seed=PERMUTATION_SEED, shapes_seed=SHAPES_SEED, scenes_seed=SCENES_SEED, seed=SEED,
        steps=MODELS[name].get("steps", STEPS), batch_size=MODELS[name].get("batch_size", 256), train_seconds=seconds,
        samples=reference_samples(model, MODELS[name].get("data", "digits")),
        sample_seed=SAMPLE_SEED, torch_version=str(torch.__version__),
        cpu_capability=torch.backends.cpu.get_cpu_capability(), machine=platform.machine(), **extra,
    )  # fmt: skip
    return {"checkpoint": np.frombuffer(buffer.getvalue(), dtype=np.uint8)}


def write(name: str, result: dict[str, np.ndarray], folder: Path = FOLDER) -> Path:
    """Write a task's checkpoint bytes to ``folder/<name>.pt`` (temporary file, then rename) and report it."""
    folder.mkdir(exist_ok=True)
    path, tmp = folder / f"{name}.pt", folder / f".{name}.pt.{os.getpid()}.tmp"
    tmp.write_bytes(result["checkpoint"].tobytes())
    os.replace(tmp, path)
    model, meta = ld.load_checkpoint(path)
    print(f"{name}: {model.num_parameters()} parameters, trained in {meta['train_seconds']:.0f} s")
    if "sample_residual" in meta:
        residual = meta["sample_residual"]
        print(f"sample residuals: median {residual.median():.3f}, under 0.1: {(residual < 0.1).float().mean():.0%}")
    return path


if __name__ == "__main__":
    args = sweep_arguments(list(MODELS), __doc__.splitlines()[0])
    names = [name for name in MODELS if name in args.only]
    run_tasks(checkpoint_bytes, names, workers=args.workers, scheduler=args.scheduler, progress=args.progress,
              desc="networks", on_result=lambda i, result: write(names[i], result))  # fmt: skip
