"""Input validation shared by the public entry points (one place, messages that name the argument)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

Tensor = torch.Tensor


def check_tensor(x: Any, name: str, *, min_dim: int = 1, finite: bool = True) -> Tensor:
    """Return ``x`` if it is a floating tensor with at least ``min_dim`` dimensions, and finite unless ``finite`` is
    false (the check reads the values: a host sync on a GPU)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s), got shape {tuple(x.shape)}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def check_batch(x: Any, name: str = "x", dim: int | None = None, finite: bool = True) -> Tensor:
    """A batch ``(B, *shape)``; when ``dim`` is given, ``prod(shape)`` must equal it (``finite`` as in
    :func:`check_tensor`)."""
    x = check_tensor(x, name, min_dim=2, finite=finite)
    if dim is not None and math.prod(x.shape[1:]) != dim:
        raise ValueError(f"{name} must have shape (B, ...) with {dim} features per item, got shape {tuple(x.shape)}")
    return x


def check_time(t: Any, x: Tensor, name: str = "t", values: bool = True) -> Tensor:
    """Time as a ``(B,)`` tensor with ``x``'s dtype and device; ``t`` is a float or a ``(B,)``/``()`` tensor in [0, 1]
    (the range is checked only when ``values``: reading a tensor's values is a host sync on a GPU)."""
    if isinstance(t, bool) or not isinstance(t, (int, float, torch.Tensor)):
        raise TypeError(f"{name} must be a float or a tensor, got {type(t).__name__}")
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        t = t.expand(x.shape[0])
    elif t.shape != (x.shape[0],):
        raise ValueError(f"{name} must be a scalar or have shape ({x.shape[0]},), got shape {tuple(t.shape)}")
    if values and (not bool(torch.isfinite(t).all()) or bool((t < 0).any()) or bool((t > 1).any())):
        raise ValueError(f"{name} must lie in [0, 1], got values in [{t.min().item():g}, {t.max().item():g}]")
    return t


def check_positive_int(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n}")
    return n


def check_positive(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__}")
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v}")
    return float(v)


def check_callable(f: Any, name: str) -> Callable:
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")
    return f


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_generator(generator: Any) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def batch_view(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-item ``(B,)`` tensor so it broadcasts against ``x`` of shape ``(B, *shape)``."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def check_mixing_weights(weights: Any, K: int, like: Tensor) -> Tensor:
    """Mixing weights ``(K,)``, positive and summing to 1, with ``like``'s dtype and device; ``None`` is uniform."""
    if weights is None:
        return torch.full((K,), 1.0 / K, dtype=like.dtype, device=like.device)
    weights = check_tensor(torch.as_tensor(weights, dtype=like.dtype, device=like.device), "weights")
    if weights.shape != (K,):
        raise ValueError(f"weights must have shape ({K},), got {tuple(weights.shape)}")
    if bool((weights <= 0).any()) or abs(weights.sum().item() - 1) > 1e-6:
        raise ValueError("weights must be positive and sum to 1")
    return weights
