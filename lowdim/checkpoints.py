"""Save and load trained denoisers with the configuration that rebuilds them.

A checkpoint is a plain dictionary of strings, numbers, lists and tensors —
``{"format": 1, "model": class name, "config": model.config, "state_dict": ..., "meta": {...}}`` — so
:func:`load_checkpoint` reads it with ``torch.load(..., weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import torch

from .models import MLPDenoiser, PreconditionedDenoiser, UNetDenoiser
from .schedules import VE, VP, Schedule

FORMAT = 1
MODELS = {"MLPDenoiser": MLPDenoiser, "UNetDenoiser": UNetDenoiser}
SCHEDULES = {"VP": VP, "VE": VE}


def rebuild_schedule(config: dict) -> Schedule:
    """The schedule described by :func:`lowdim.models.schedule_config`'s dictionary."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in SCHEDULES:
        raise ValueError(f"config names schedule {name!r}; expected one of {tuple(SCHEDULES)}")
    return SCHEDULES[name](**config)


def _check_plain(value, name: str) -> None:
    """``torch.load(weights_only=True)`` reads only plain containers, numbers, strings and tensors: refuse the rest
    at save time rather than write a file that cannot be loaded."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{name}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{name}[{key!r}]")
    elif not (value is None or isinstance(value, (bool, int, float, str, torch.Tensor))):
        raise TypeError(f"{name} must be a number, string, tensor, list or dict, got {type(value).__name__}")


def save_checkpoint(path: str | Path | BinaryIO, model: PreconditionedDenoiser, **meta) -> None:
    """Write ``model`` (an :class:`~lowdim.models.MLPDenoiser` or :class:`~lowdim.models.UNetDenoiser`, or the
    ``.module`` of an :func:`~lowdim.train.ema_model`) with its config and ``meta`` (numbers, strings, lists, tensors)
    to ``path`` (a file name or a binary file object)."""
    name = type(model).__name__
    if name not in MODELS:
        raise TypeError(f"model must be one of {tuple(MODELS)}, got {name}")
    for key, value in meta.items():
        _check_plain(value, f"meta[{key!r}]")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "model": name, "config": model.config, "state_dict": state, "meta": meta}, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[PreconditionedDenoiser, dict]:
    """Rebuild the model saved by :func:`save_checkpoint` (safe loading, ``weights_only=True``).

    Returns ``(model, meta)`` with the model in eval mode, in the dtype it was saved in.
    """
    blob = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or blob.get("model") not in MODELS:
        raise ValueError(f"path: {path} is not a lowdim checkpoint (format {FORMAT})")
    config = dict(blob["config"])
    schedule = rebuild_schedule(config.pop("schedule"))
    if "shape" in config:
        config["shape"] = tuple(config["shape"])
    if "channels" in config:
        config["channels"] = tuple(config["channels"])
    model = MODELS[blob["model"]](schedule=schedule, **config)
    dtype = next(iter(blob["state_dict"].values())).dtype
    model.to(dtype).load_state_dict(blob["state_dict"])
    return model.to(map_location).eval(), blob["meta"]
