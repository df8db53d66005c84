"""Benchmark: one study serially and on a local Dask cluster of 2 workers, and what more workers would give.

    .venv/bin/python benchmarks/scaling.py      # writes benchmarks/results/scaling.md (about 8 minutes on 2 cores)

The study is the K = 2 DAE phase-transition sweep of chapter 7 at a reduced size (ranks 1..8, N = 1..15, 2 trials,
600 steps): 8 tasks, one per rank. It runs serially in this process (one torch thread, as each worker has), timing
every task, then on ``LocalCluster(n_workers=2, threads_per_worker=1)``; the two results must be equal bit for bit.
From the serial task times it projects the wall time for 8, 64 and 256 workers by greedy list scheduling in task
order (what Dask does with tasks submitted in order): with W >= the number of tasks, the longest task bounds the
sweep, so the task count is the ceiling on parallelism. Cluster start-up and data transfer are not in the
projection; the measured 2-worker time includes them. Two ceilings bound any 2-worker speed-up on this machine: the
study's longest task run in two plain processes at once against alone (the two cores share caches and memory
bandwidth), and the same for a pure-Python loop (which shares almost nothing).
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from lowdim.experiments.engine import run_tasks
from lowdim.experiments.phase import phase_tasks

STUDY = dict(method="dae", d=48, K=2, ranks=list(range(1, 9)), sample_sizes=list(range(1, 16)), trials=2, steps=600)
SPIN = 20_000_000  # a pure-Python loop: what two processes at once get from this machine, whatever the study
OUT = Path(__file__).with_name("results") / "scaling.md"


def makespan(times: list[float], workers: int) -> float:
    """Wall time of running ``times`` in order on ``workers`` (each task to the first free worker)."""
    free = [0.0] * min(workers, len(times))
    for t in times:
        heapq.heapreplace(free, free[0] + t)
    return max(free)


def spin(_=None) -> float:
    start, total = time.perf_counter(), 0
    for i in range(SPIN):
        total += i
    return time.perf_counter() - start


def timed_task(task) -> float:
    row, _ = phase_tasks(**STUDY, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    run_tasks(row, [task], progress=False)  # serially, on one torch thread
    return time.perf_counter() - start


def machine_ceiling(work, arg) -> float:
    """Throughput of two fresh processes running ``work(arg)`` at once relative to one alone (2.0 on two free
    cores that share nothing)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        alone = pool.apply(work, (arg,))
    with context.Pool(2) as pool:
        pair = max(pool.map(work, [arg, arg]))
    return 2 * alone / pair


def main() -> None:
    torch.set_num_threads(1)
    # the tasks of lowdim.phase_transition(**STUDY, generator=torch.Generator().manual_seed(0))
    row, tasks = phase_tasks(**STUDY, generator=torch.Generator().manual_seed(0))
    stamps = []
    start = time.perf_counter()
    serial = run_tasks(row, tasks, desc="serial", on_result=lambda i, r: stamps.append(time.perf_counter()))
    serial_wall = time.perf_counter() - start
    task_times = list(np.diff([start, *stamps]))
    start = time.perf_counter()
    parallel = run_tasks(row, tasks, workers=2, desc="2 workers")
    parallel_wall = time.perf_counter() - start
    same = all(np.array_equal(a["errors"], b["errors"]) for a, b in zip(serial, parallel))
    assert same, "2 workers must give the serial result"
    longest = tasks[int(np.argmax(task_times))]
    task_ceiling, python_ceiling = machine_ceiling(timed_task, longest), machine_ceiling(spin, None)

    lines = [
        f"Study: K = 2 DAE phase sweep, d = 48, ranks 1–8 (one task each), N = 1–15, {STUDY['trials']} trials, "
        f"{STUDY['steps']} steps. Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, one thread per worker. The 2-worker result equals the serial one bit for bit.",
        "",
        "| run | wall time (s) | speed-up |",
        "| --- | --- | --- |",
        f"| serial (measured) | {serial_wall:.1f} | 1.00 |",
        f"| 2 workers, LocalCluster (measured) | {parallel_wall:.1f} | {serial_wall / parallel_wall:.2f} |",
        f"| ceiling: the longest task (r = {longest[0]}) in two plain processes at once | | {task_ceiling:.2f} |",
        f"| ceiling: a pure-Python loop in two processes at once | | {python_ceiling:.2f} |",
    ]
    for w in (8, 64, 256):
        projected = makespan(task_times, w)
        lines.append(f"| {w} workers (projected) | {projected:.1f} | {sum(task_times) / projected:.2f} |")
    lines += ["", "Per-task time, serial (s): " + ", ".join(f"r = {r}: {t:.1f}" for r, t in
                                                        zip(STUDY["ranks"], task_times))]  # fmt: skip
    lines += [f"With {len(task_times)} tasks, more than {len(task_times)} workers cannot help: the longest task "
              f"({max(task_times):.1f} s) bounds the sweep."]  # fmt: skip
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
