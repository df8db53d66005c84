"""Randomness: every draw in :mod:`lowdim` goes through this module.

The convention, everywhere:

- Public functions take ``generator: torch.Generator | None``; ``None`` means torch's global generator (seed it with
  :func:`torch.manual_seed`), a generator means a reproducible stream: same generator state, same numbers.
- Draws happen on the generator's device and are then moved to the tensor's device, so a CPU generator gives the
  same numbers for CPU and CUDA tensors.
- Independent sub-streams (one per row, cell or task of a study) come from :func:`spawn`: successive draws from the
  parent give each child its seed, so child ``i`` is the same whatever the number of children drawn after it.
- Code that can only draw from the global generator (``torch.nn`` layer initialization) runs inside
  :func:`drawing_from`, which lends it a generator's stream and restores the global state afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

SEED_BOUND = 2**62  # child seeds are drawn uniformly from [0, SEED_BOUND)


def _source(generator: torch.Generator | None, device: torch.device | str) -> torch.device | str:
    return generator.device if generator is not None else device


def randn(shape, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Standard normal tensor of ``shape`` on ``device``; same ``generator`` state, same numbers on every device."""
    return torch.randn(shape, generator=generator, dtype=dtype, device=_source(generator, device)).to(device)


def rand(shape, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Uniform [0, 1) tensor of ``shape`` on ``device``, drawn on the generator's device."""
    return torch.rand(shape, generator=generator, dtype=dtype, device=_source(generator, device)).to(device)


def randint(high: int, shape, generator: torch.Generator | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Integers uniform on ``[0, high)`` of ``shape`` (``torch.long``) on ``device``, drawn on the generator's device."""
    return torch.randint(0, high, shape, generator=generator, device=_source(generator, device)).to(device)


def multinomial(
    weights: torch.Tensor, n: int, generator: torch.Generator | None, replacement: bool = False
) -> torch.Tensor:
    """``torch.multinomial`` on ``weights`` ``(..., K)`` drawn with ``generator`` (on its device), returned on
    ``weights``' device."""
    source = weights.to(_source(generator, weights.device))
    return torch.multinomial(source, n, replacement=replacement, generator=generator).to(weights.device)


def randperm(n: int, generator: torch.Generator | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """A random permutation of ``range(n)`` on ``device``, drawn on the generator's device."""
    return torch.randperm(n, generator=generator, device=_source(generator, device)).to(device)


def stream(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: the one way :mod:`lowdim` turns an integer into a stream."""
    return torch.Generator().manual_seed(int(seed))


def spawn_seeds(generator: torch.Generator | None, n: int, bound: int = SEED_BOUND) -> list[int]:
    """``n`` child seeds, successive draws uniform on ``[0, bound)`` from ``generator`` (advancing it)."""
    device = generator.device if generator is not None else "cpu"
    return [int(torch.randint(0, bound, (1,), generator=generator, device=device)) for _ in range(n)]


def spawn(generator: torch.Generator | None, n: int) -> list[torch.Generator]:
    """``n`` independent child streams of ``generator``: :func:`stream` of each of :func:`spawn_seeds`."""
    return [stream(s) for s in spawn_seeds(generator, n)]


def copy_stream(generator: torch.Generator) -> torch.Generator:
    """A new generator in the same state as ``generator``: it will draw the same numbers."""
    return torch.Generator(device=generator.device).set_state(generator.get_state())


@contextmanager
def drawing_from(generator: torch.Generator | None) -> Iterator[None]:
    """Run the block with torch's global CPU generator drawing from ``generator``'s stream (for code that has no
    ``generator`` argument, such as the initialization of ``torch.nn`` layers), then restore the global state.

    ``generator`` advances by what the block drew, as if the block had drawn from it directly; ``None`` leaves the
    global generator in charge. A fresh ``stream(s)`` gives the block exactly the numbers it would draw after
    ``torch.manual_seed(s)``. A generator on another device lends the child stream of one draw from it (layer
    initialization draws on the CPU).
    """
    if generator is None:
        yield
        return
    if generator.device.type != "cpu":
        generator = spawn(generator, 1)[0]
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.set_state(generator.get_state())
        yield
        generator.set_state(torch.default_generator.get_state())
