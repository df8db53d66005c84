"""Where the cached study results live: the repository's ``data/`` folder, each file made by a ``data/make_*.py``
script; an installed wheel carries a copy as ``lowdim/_data`` (see setup.py), and ``$LOWDIM_DATA`` overrides both."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # lowdim/


def data_root() -> Path:
    """The folder cached results are read from: ``$LOWDIM_DATA`` when set; else the wheel's own copy
    ``lowdim/_data`` (an installed package, outside any clone); else the repository's ``data/`` (a clone, or an
    editable install)."""
    if "LOWDIM_DATA" in os.environ:
        return Path(os.environ["LOWDIM_DATA"])
    packaged = PACKAGE_ROOT / "_data"
    return packaged if packaged.is_dir() else PACKAGE_ROOT.parent / "data"


def data_path(name: str) -> Path:
    """Path of a cached artifact ``name`` (``"phase_k1_dae.npz"``, ``"checkpoints/x.pt"``) under :func:`data_root`.

    Raises ``FileNotFoundError`` naming the script that regenerates it when the file is missing.
    """
    root = data_root()
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
