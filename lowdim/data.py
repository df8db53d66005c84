"""Data sets that need no download."""

from __future__ import annotations

import os
from pathlib import Path

import torch

Tensor = torch.Tensor


def digits(dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), pixel values 0..16 mapped to [-1, 1].

    Returns ``(images, labels)`` with shapes ``(1797, 1, 8, 8)`` and ``(1797,)``.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=dtype or torch.get_default_dtype()) / 8.0 - 1.0
    return images.unsqueeze(1), torch.as_tensor(bunch.target, dtype=torch.long)


def data_path(name: str) -> Path:
    """Path of a cached artifact in the repository's ``data/`` folder (or in ``$LOWDIM_DATA`` when set).

    Raises ``FileNotFoundError`` naming the script that regenerates it when the file is missing.
    """
    root = Path(os.environ.get("LOWDIM_DATA", Path(__file__).resolve().parents[1] / "data"))
    path = root / name
    if not path.exists():
        parts = Path(name).stem.split("_")  # phase_k1_dae.npz <- make_phase_k1_dae.py, make_phase_k1.py, make_phase.py
        scripts = [root / f"make_{'_'.join(parts[:n])}.py" for n in range(len(parts), 0, -1)]
        script = next((s for s in scripts if s.exists()), None)
        hint = f"; regenerate it with `python {script}`" if script else ""
        raise FileNotFoundError(f"name: no cached file {path}{hint}")
    return path
