"""Random draws that honour a ``generator`` on any device: draw where the generator lives, then move."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def randn(shape, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Standard normal tensor of ``shape`` on ``device``; same ``generator`` state, same numbers on every device."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, dtype=dtype, device=where).to(device)


def rand(shape, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Uniform [0, 1) tensor of ``shape`` on ``device``, drawn on the generator's device."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, dtype=dtype, device=where).to(device)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global generator seeded by ``seed`` (e.g. to fix a network's initialization),
    then restore the global generator's state: code outside the block sees no change."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
