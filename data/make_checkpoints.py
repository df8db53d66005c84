"""Train and save the image denoisers the chapters load: for chapter 4 an MLP and a U-Net, each on N = 16
(memorization) and N = 1024 (generalization) digits; for chapter 8 a U-Net on 32x32 RGB shapes (d = 3072).

    .venv/bin/python data/make_checkpoints.py            # five networks; about 15 minutes on 2 cores
    .venv/bin/python data/make_checkpoints.py digits_mlp_n16   # just one

Writes data/checkpoints/<name>.pt (lowdim.checkpoints format, loaded with weights_only=True). Each checkpoint's
meta holds its training time and SAMPLES samples drawn from noise seed SAMPLE_SEED right after training, so a
test can check that loading it and sampling again reproduces them bit for bit.
"""

import platform
import sys
import time
from pathlib import Path

import torch
from make_reproducibility import PERMUTATION_SEED, STEPS, digits_pool

import lowdim as ld
from lowdim.experiments.reproducibility import draw_samples

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
}  # a U-Net step costs 9x an MLP step: 4,000 steps of 128 images keep it under 5 minutes (shapes: 2,800 of 32)
SHAPES_SEED = (
    0  # the shapes training set is lowdim.shapes(n_train, generator=torch.Generator().manual_seed(SHAPES_SEED))
)
SEED = 0
SAMPLE_SEED = 2024
SAMPLES = 16
FOLDER = Path(__file__).with_name("checkpoints")


def training_set(name: str) -> torch.Tensor:
    """The images ``name`` trains on: the first n_train of the shuffled digits, or n_train shapes (float32)."""
    n_train = MODELS[name]["n_train"]
    if MODELS[name].get("data") == "shapes":
        return ld.shapes(n_train, generator=torch.Generator().manual_seed(SHAPES_SEED), dtype=torch.float32)[0]
    return digits_pool()[:n_train]


def train(name: str):
    """Train ``name`` from MODELS (EMA 0.999 unless it says otherwise); returns ``(model, seconds)``."""
    settings = {"ema_decay": 0.999, **MODELS[name]}
    settings.pop("n_train"), settings.pop("data", None)
    steps = settings.pop("steps", STEPS)
    start = time.perf_counter()
    model = ld.fit_denoiser(training_set(name), steps, generator=torch.Generator().manual_seed(SEED),
                            init_generator=torch.Generator().manual_seed(SEED), progress=True, **settings)  # fmt: skip
    return model, time.perf_counter() - start


IMAGE_SHAPES = {"digits": (1, 8, 8), "shapes": (3, 32, 32)}


def reference_samples(model, data: str = "digits") -> torch.Tensor:
    return draw_samples(model, IMAGE_SHAPES[data], SAMPLES, torch.Generator().manual_seed(SAMPLE_SEED))


def build(name: str, folder: Path = FOLDER) -> Path:
    """Train ``name``, sample it, and write ``folder/<name>.pt``."""
    folder.mkdir(exist_ok=True)
    model, seconds = train(name)
    path = folder / f"{name}.pt"
    ld.save_checkpoint(
        path, model, data=MODELS[name].get("data", "digits"), n_train=MODELS[name]["n_train"],
        permutation_seed=PERMUTATION_SEED, shapes_seed=SHAPES_SEED, seed=SEED,
        steps=MODELS[name].get("steps", STEPS), batch_size=MODELS[name].get("batch_size", 256), train_seconds=seconds,
        samples=reference_samples(model, MODELS[name].get("data", "digits")),
        sample_seed=SAMPLE_SEED, torch_version=str(torch.__version__),
        cpu_capability=torch.backends.cpu.get_cpu_capability(), machine=platform.machine(),
    )  # fmt: skip
    print(f"{name}: {model.num_parameters()} parameters, trained in {seconds:.0f} s")
    return path


if __name__ == "__main__":
    for name in sys.argv[1:] or MODELS:
        build(name)
