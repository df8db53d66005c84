"""Studies as independent tasks, run serially or on Dask distributed.

A study is a list of *tasks* (a row of a phase sweep, a network of a reproducibility sweep, a batch of images) and
a function that computes one task's result from the task alone. Each task carries its own seed, drawn from the
study's generator by its index, so the results do not depend on how many
workers run the tasks or in which order they finish.

:func:`run_tasks` runs them

- serially (``workers=0``): the reference that the tests compare the parallel runs against;
- on a ``distributed.LocalCluster`` of ``workers`` worker processes with one thread each, torch set to one thread
  in each (two processes with torch's default threads on two cores were measured up to 10x slower, from
  busy-waiting);
- or on an existing cluster, ``scheduler="tcp://host:8786"``.

With ``store`` (a folder), each finished task is written there as it completes (``task-00012.npz``, to a temporary
name first, then renamed, with a fingerprint of the task and the study's settings), and a rerun loads the finished
tasks instead of computing them again: an interrupted sweep resumes where it stopped. A stored task whose fingerprint
differs (the settings changed in between) is refused, not reused. A task's result is a dict of arrays, which is what an ``.npz`` file holds without
pickle. Every task runs with torch on one thread (:func:`task_threads` changes that) and the caller's default dtype,
in the caller's process or on a worker alike, so a sweep gives the same numbers bit for bit however it is run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import logging
import pickle
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .results import write_npz_atomic

TaskResult = dict[str, np.ndarray]
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _as_arrays(result: Mapping) -> TaskResult:
    if not isinstance(result, Mapping):
        raise TypeError(f"a task must return a dict of arrays, got {type(result).__name__}")
    return {
        str(k): (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in result.items()
    }


_threads = [1]  # torch threads per task: task_threads changes it


@contextlib.contextmanager
def task_threads(threads: int) -> Iterator[None]:
    """Tasks started inside this block run with torch on ``threads`` threads instead of one, serially and on every
    worker (a cluster's workers should then have that many cores each). Numbers are equal bit for bit only between
    runs with the same count; a test that compares with a cached file up to a tolerance may use the cores it has."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    _threads.append(threads)
    try:
        yield
    finally:
        _threads.pop()


@contextlib.contextmanager
def _as_on_a_worker(dtype: torch.dtype, threads: int) -> Iterator[None]:
    """Torch on ``threads`` threads with ``dtype`` as the default, restored afterwards: every task runs like this,
    serially or on any worker, so the results do not depend on where a task ran (a worker process does not inherit
    the caller's default dtype, and thread counts change the rounding of reductions)."""
    before, default = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        torch.set_default_dtype(default)


def _run_one(compute: Callable, task, dtype: torch.dtype, threads: int = 1) -> TaskResult:
    with _as_on_a_worker(dtype, threads):
        return _as_arrays(compute(task))


@functools.lru_cache(maxsize=2)
def cached_model(checkpoint: str) -> torch.nn.Module:
    """The network of the data file ``checkpoint`` (a name for :func:`~lowdim.data_path`, e.g.
    ``"checkpoints/scenes_unet_n16384.pt"``), loaded once per process with gradients off for its parameters. Tasks
    name their network this way, so nothing big travels to a worker and a worker loads it once for all its tasks."""
    from ..checkpoints import load_checkpoint
    from .cache import data_path

    return load_checkpoint(data_path(checkpoint))[0].requires_grad_(False)


def _task_path(store: Path, index: int) -> Path:
    return store / f"task-{index:05d}.npz"


FINGERPRINT = "__task__"  # the key of a stored task's fingerprint


def _tensor_bytes(dtype: str, shape: tuple, data: bytes) -> None:  # pragma: no cover - never unpickled
    raise NotImplementedError


class _Canonical(pickle.Pickler):
    """A pickler whose output depends on values only: torch pickles a tensor's storage under a key that changes from
    process to process, so a tensor is written as its dtype, shape and bytes."""

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            data = obj.detach().cpu().contiguous().reshape(-1)
            return _tensor_bytes, (str(obj.dtype), tuple(obj.shape), data.view(torch.uint8).numpy().tobytes())
        return NotImplemented


def _fingerprint(compute: Callable, task) -> str:
    """SHA-256 of ``(compute, task)`` pickled by value (:class:`_Canonical`): the study's settings (a
    ``functools.partial``'s arguments) and the task, the same in every process. Empty when they cannot be pickled
    (a lambda: only serial runs), and then not checked."""
    buffer = io.BytesIO()
    try:
        _Canonical(buffer, protocol=5).dump((compute, task))
    except (pickle.PicklingError, TypeError, AttributeError):
        return ""
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _load(path: Path, fingerprint: str) -> TaskResult:
    with np.load(path, allow_pickle=False) as f:
        result = {k: f[k] for k in f.files}
    stored = str(result.pop(FINGERPRINT, ""))
    if stored and fingerprint and stored != fingerprint:
        raise ValueError(
            f"store: {path} holds the result of another task or study settings; remove {path.parent} to recompute"
        )
    return result


@contextlib.contextmanager
def dask_client(workers: int = 0, scheduler: str | None = None) -> Iterator:
    """A ``distributed.Client``: connected to ``scheduler`` when given, else to a new ``LocalCluster`` of ``workers``
    single-threaded worker processes (closed on exit)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in every worker before it starts. An explicit trim threshold
    # switches off glibc's adaptive mmap threshold, so every large tensor is mmap-ed, page-faulted and unmapped
    # again: a DAE phase row took 25 s instead of 11 s on one thread. None unsets it (glibc's defaults return).
    # The worker's event-loop thread takes the GIL from the task's thread at each wake-up: the statistical profiler
    # (for a dashboard we do not start) every 10 ms, the memory and system monitors every 0.1 and 0.5 s. A torch loop
    # of small tensors holds the GIL between ops, so each wake-up costs it up to a switch interval (5 ms).
    settings = {
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
        "distributed.worker.profile.enabled": False,
        "distributed.worker.memory.monitor-interval": "1s",
        "distributed.admin.system-monitor.interval": "2s",
    }
    with (
        dask.config.set(settings),
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR, env=SINGLE_THREAD_ENV,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def run_tasks(
    compute: Callable[[object], Mapping],
    tasks: Sequence,
    *,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
    progress: bool = True,
    desc: str = "tasks",
    on_result: Callable[[int, TaskResult], None] | None = None,
) -> list[TaskResult]:
    """``[compute(task) for task in tasks]`` as dicts of arrays, serially or on Dask (see the module docstring).

    ``compute`` must be picklable (a module-level function or a ``functools.partial`` of one) when run on Dask.
    ``store``: a folder of finished tasks; tasks found there are loaded, not computed. ``on_result(index, result)``
    is called in the caller's process as each computed task finishes. Returns the results in the order of ``tasks``.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be a non-negative int (0: serial), got {workers!r}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(
            f"scheduler must be an address string such as 'tcp://host:8786', got {type(scheduler).__name__}"
        )
    if scheduler is not None and workers:
        raise ValueError("give either workers (a local cluster) or scheduler (an existing cluster), not both")
    tasks = list(tasks)
    results: list[TaskResult | None] = [None] * len(tasks)
    if store is not None:
        store = Path(store)
        store.mkdir(parents=True, exist_ok=True)
        for i in range(len(tasks)):
            if _task_path(store, i).is_file():
                results[i] = _load(_task_path(store, i), _fingerprint(compute, tasks[i]))
    pending = [i for i, r in enumerate(results) if r is None]
    dtype, threads = torch.get_default_dtype(), _threads[-1]  # the caller's, for every task wherever it runs

    def finish(i: int, result: TaskResult) -> None:
        results[i] = result
        if store is not None:
            write_npz_atomic(_task_path(store, i), {**result, FINGERPRINT: np.str_(_fingerprint(compute, tasks[i]))})
        if on_result is not None:
            on_result(i, result)

    bar = tqdm(total=len(tasks), initial=len(tasks) - len(pending), desc=desc, disable=not progress)
    with bar:
        if not workers and scheduler is None:
            for i in pending:
                finish(i, _run_one(compute, tasks[i], dtype, threads))
                bar.update()
        elif pending:
            from distributed import as_completed

            with dask_client(workers, scheduler) as client:
                futures = {client.submit(_run_one, compute, tasks[i], dtype, threads, pure=False): i for i in pending}
                for future in as_completed(futures):
                    finish(futures[future], future.result())
                    bar.update()
    return results  # type: ignore[return-value]


def batch_slices(n: int, batch_size: int, batches: Sequence[int] | None = None) -> list[tuple[int, slice]]:
    """Consecutive batches of ``batch_size`` over ``n`` items (the last may be shorter): ``(b, rows)`` for every
    batch ``b``, or only for the indices in ``batches``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    count = -(-n // batch_size)
    chosen = list(range(count)) if batches is None else [int(b) for b in batches]
    if any(not 0 <= b < count for b in chosen):
        raise ValueError(f"batches must lie in [0, {count}), got {chosen}")
    return [(b, slice(b * batch_size, min((b + 1) * batch_size, n))) for b in chosen]


@contextlib.contextmanager
def task_store(result: str | Path) -> Iterator[Path]:
    """The folder where a ``data/make_*.py`` script keeps the finished tasks of the file ``result``:
    ``.tasks/<name>`` next to it, removed when the block completes (the file written), kept if it fails, so a
    rerun resumes."""
    result = Path(result)
    store = result.with_name(".tasks") / result.stem
    yield store
    shutil.rmtree(store, ignore_errors=True)


def sweep_arguments(names: Sequence[str], description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line every ``data/make_*.py`` script shares: ``--workers N`` (a local Dask cluster; 0 runs
    serially), ``--scheduler ADDRESS`` (an existing cluster), ``--only NAME`` (one of ``names``, repeatable) and
    ``--no-progress``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workers", type=int, default=0, help="local Dask workers, one thread each (0: serial)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler, tcp://host:8786")
    parser.add_argument("--only", action="append", choices=list(names), help="compute only this result")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    args = parser.parse_args(argv)
    if args.workers and args.scheduler:
        parser.error("give --workers or --scheduler, not both")
    args.only = args.only or list(names)
    return args
