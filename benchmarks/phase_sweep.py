"""Benchmark: one DAE phase-transition sweep, batched (one stacked model per rank) vs a plain per-trial loop.

    python benchmarks/phase_sweep.py                 # d = 48, K = 1, r = 1..8, N = 1..15, 20 trials
    python benchmarks/phase_sweep.py --loop-trials 0 # time the whole per-trial loop too (slow: tens of minutes)

The batched sweep (``lowdim.phase_transition(method="dae")``: one stacked model per rank) is timed in full. The loop
trains one LowRankDAE per data set with the same steps and noise draws; by default it runs on a random sample of
``--loop-trials`` data sets and the full loop time is extrapolated from its mean (printed as such). Both run in
this process, one after the other, in float32.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from lowdim._random import spawn
from lowdim.dae import LowRankDAE, train_dae
from lowdim.experiments.phase import phase_transition, sweep_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d", type=int, default=48)
    p.add_argument("--K", type=int, default=1)
    p.add_argument("--max-rank", type=int, default=8)
    p.add_argument("--max-n", type=int, default=15)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--loop-trials", type=int, default=40, help="data sets timed in the loop; 0 = all")
    args = p.parse_args()

    torch.manual_seed(0)
    ranks, sizes = list(range(1, args.max_rank + 1)), list(range(1, args.max_n + 1))
    rows = [sweep_data(args.d, args.K, r, sizes, args.trials, g)[0] for r, g in zip(ranks, spawn(None, len(ranks)))]
    datasets = [(r, X[b]) for r, X in zip(ranks, rows) for b in range(len(X))]
    B = len(datasets)
    restarts = 1 if args.K == 1 else 16
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"sweep: d={args.d} K={args.K} r=1..{args.max_rank} N=1..{args.max_n} x {args.trials} trials = {B} data sets,"
        f" {restarts} restart(s), {args.steps} Adam steps each"
    )

    t0 = time.perf_counter()
    phase_transition(
        "dae", args.d, args.K, ranks, sizes, args.trials, torch.Generator().manual_seed(0), steps=args.steps
    )
    batched = time.perf_counter() - t0
    print(f"batched: {batched:8.1f} s for all {B} data sets")

    n_loop = B if args.loop_trials == 0 else min(args.loop_trials, B)
    picks = torch.randperm(B, generator=torch.Generator().manual_seed(2))[:n_loop]
    t0 = time.perf_counter()
    for b in picks.tolist():
        r, X = datasets[b]
        data = X[X.norm(dim=1) > 0].float()
        for restart in range(restarts):
            model = LowRankDAE(
                args.d, args.K, r, generator=torch.Generator().manual_seed(b * 100 + restart), dtype=torch.float32
            )
            train_dae(model, data, steps=args.steps, generator=torch.Generator().manual_seed(b), progress=False)
    loop = (time.perf_counter() - t0) * B / n_loop
    label = "measured" if n_loop == B else f"extrapolated from {n_loop} data sets"
    print(f"loop:    {loop:8.1f} s for all {B} data sets ({label})")
    print(f"speed-up of the batched sweep: {loop / batched:.1f}x")


if __name__ == "__main__":
    main()
