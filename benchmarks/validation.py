"""Benchmark: what input validation costs inside a network's forward pass (issue: validate at the public boundary).

    python benchmarks/validation.py            # CPU, and CUDA too when a GPU is present

A network's ``forward`` is called once per sampler step and twice per Heun step. Before, every call checked that
``x`` and a tensor ``t`` were finite and that ``t`` lay in [0, 1]: on a GPU each such check reads a value back to the
host (a synchronization). Now ``forward`` checks only shapes and a float ``t``; the entry points (``sample``,
``train_denoiser``, the Jacobian kernel) check their inputs once. This script times ``model(x, t)`` as it is now
against the same call preceded by the old per-call checks, in one run, and prints the ratio.
"""

from __future__ import annotations

import platform
import time

import torch

import lowdim as ld
from lowdim._checks import check_batch, check_time


def per_call(fn, repeats: int, device: str, rounds: int = 5) -> float:
    """Seconds per call: the fastest of ``rounds`` rounds of ``repeats`` calls (the least disturbed by other work)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def main() -> None:
    torch.set_num_threads(1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 CPU thread")
    print(f"{'device':6} {'network':18} {'batch':>5} {'now (ms)':>9} {'old checks (ms)':>16} {'ratio':>6}")
    for device in devices:
        for name, model, shape in [
            ("MLP 64-256x3", ld.MLPDenoiser(64, ld.VP(), width=256, depth=3), (64,)),
            ("U-Net 3x32x32", ld.UNetDenoiser((3, 32, 32), ld.VP(), channels=(16, 32, 32)), (3, 32, 32)),
        ]:
            model = model.to(device).float().eval()
            for batch in (1, 64):
                x = torch.randn(batch, *shape, device=device)
                t = torch.full((batch,), 0.5, device=device)

                def now(x=x, t=t, model=model):
                    with torch.no_grad():
                        return model(x, t)

                def old(x=x, t=t, model=model):  # the checks forward made on every call before
                    check_batch(x, "x", model.dim)
                    check_time(t, x)
                    return now(x, t, model)

                repeats = 200 if name.startswith("MLP") else 10
                a, b = per_call(now, repeats, device), per_call(old, repeats, device)
                print(f"{device:6} {name:18} {batch:5d} {1e3 * a:9.3f} {1e3 * b:16.3f} {b / a:6.2f}")


if __name__ == "__main__":
    main()
