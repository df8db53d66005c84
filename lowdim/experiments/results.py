"""What every study result shares: saving to and loading from a safe ``.npz`` file, and reading off the training-set
size at which a condition starts to hold."""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class NpzResult:
    """Mixin for a dataclass of plain fields (``int``, ``float``, ``str``, lists of numbers or strings, arrays):
    :meth:`save` writes each field as one array of a compressed ``.npz`` file and :meth:`load` reads it back with
    ``allow_pickle=False``, converting each array to its field's annotated type."""

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as one plain array (numbers or strings, no objects): what :meth:`save` writes and what a task
        of :func:`~lowdim.experiments.engine.run_tasks` returns."""
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)}
        for name, value in arrays.items():
            if value.dtype == object:
                raise TypeError(f"field {name} must hold numbers or strings to be saved without pickle")
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> typing.Self:
        """The inverse of :meth:`to_arrays`: each array converted to its field's annotated type."""
        values = {}
        for field in dataclasses.fields(cls):
            array, kind = np.asarray(arrays[field.name]), _kind(field.type)
            if kind == "list":
                values[field.name] = array.tolist()
            elif kind in SCALARS:
                values[field.name] = SCALARS[kind](array)
            else:
                values[field.name] = array
        return cls(**values)

    def save(self, path: str | Path) -> None:
        """Write every field to ``path`` (``.npz``, plain arrays, no pickle), atomically (:func:`write_npz_atomic`)."""
        write_npz_atomic(path, self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> typing.Self:
        """Read a file written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as f:
            return cls.from_arrays({name: f[name] for name in f.files})


def write_npz_atomic(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (compressed ``.npz``) through a temporary file in the same folder and a rename,
    so a reader never sees a half-written file and an interrupted write leaves the old file in place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


SCALARS = {"int": int, "float": float, "str": str}


def _kind(annotation) -> str:
    """``"list"``, ``"int"``, ``"np.ndarray"``...: the outer type an annotation names, whether it is a string (with
    ``from __future__ import annotations``) or a type."""
    if isinstance(annotation, str):
        return annotation.split("[")[0].strip()
    return getattr(typing.get_origin(annotation) or annotation, "__name__", "")


def smallest_size(sizes: Sequence[int], holds: np.ndarray, sustained: bool = True) -> np.ndarray:
    """For each row of ``holds`` ``(R, len(sizes))`` (a condition per training-set size, sizes increasing), the
    smallest size at which the condition holds: with ``sustained`` the size from which on it holds at every larger
    size, otherwise the first size at which it holds. NaN where there is none. Returns ``(R,)`` floats."""
    holds = np.atleast_2d(np.asarray(holds, dtype=bool))
    if holds.shape[-1] != len(sizes):
        raise ValueError(f"holds must have {len(sizes)} columns (one per size), got shape {holds.shape}")
    out = np.full(len(holds), np.nan)
    for i, row in enumerate(holds):
        if sustained:
            fails = np.nonzero(~row)[0]
            start = 0 if len(fails) == 0 else fails[-1] + 1
        else:
            hits = np.nonzero(row)[0]
            start = hits[0] if len(hits) else len(sizes)
        if start < len(sizes):
            out[i] = sizes[start]
    return out
