"""Where the cached study results live: the repository's ``data/`` folder (or ``$LOWDIM_DATA``), each file made by
a ``data/make_*.py`` script."""

from __future__ import annotations

import os
from pathlib import Path


def data_path(name: str) -> Path:
    """Path of a cached artifact in the repository's ``data/`` folder (or in ``$LOWDIM_DATA`` when set).

    Raises ``FileNotFoundError`` naming the script that regenerates it when the file is missing.
    """
    root = Path(os.environ.get("LOWDIM_DATA", Path(__file__).resolve().parents[2] / "data"))
    path = root / name
    if not path.exists():
        parts = Path(name).stem.split("_")  # phase_k1_dae.npz <- make_phase_k1_dae.py, make_phase_k1.py, make_phase.py
        scripts = [root / f"make_{'_'.join(parts[:n])}.py" for n in range(len(parts), 0, -1)]
        scripts += [
            root / f"make_{folder}.py" for folder in Path(name).parent.parts
        ]  # checkpoints/x.pt <- make_checkpoints.py
        script = next((s for s in scripts if s.exists()), None)
        hint = f"; regenerate it with `python {script}`" if script else ""
        raise FileNotFoundError(f"name: no cached file {path}{hint}")
    return path
