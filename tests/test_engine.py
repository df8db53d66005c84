"""lowdim.experiments.engine: a sweep's tasks give the same result serially, on a two-worker Dask cluster, with a
worker killed mid-sweep, and after an interruption (only the unfinished tasks run again)."""

import copy
import os
import signal

import numpy as np
import pytest
import torch

import lowdim as ld
from lowdim.experiments import engine
from lowdim.experiments.phase import phase_tasks

# A small DAE sweep: 4 rows, each about a second on one thread.
SWEEP = dict(method="dae", d=12, K=2, ranks=[1, 2, 3, 2], sample_sizes=[1, 2, 4], trials=2, steps=60)


def _sweep(**kw):
    return ld.phase_transition(**SWEEP, generator=torch.Generator().manual_seed(0), progress=False, **kw)


@pytest.fixture(scope="module")
def serial_store(tmp_path_factory):
    """The serial sweep, with its finished rows kept in a store folder."""
    store = tmp_path_factory.mktemp("store")
    return _sweep(store=store), store


@pytest.fixture(scope="module")
def serial(serial_store):
    return serial_store[0]


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=engine.SINGLE_THREAD_ENV
    ) as c:
        yield c


def test_two_workers_give_the_serial_sweep_bit_for_bit(serial, cluster):
    parallel = _sweep(scheduler=cluster.scheduler_address)
    assert np.array_equal(parallel.errors, serial.errors)
    assert serial.errors.shape == (4, 3, 2) and np.isfinite(serial.errors).all()


def test_a_local_cluster_started_by_workers_gives_the_serial_sweep(serial):
    pytest.importorskip("distributed")
    assert np.array_equal(_sweep(workers=2).errors, serial.errors)


def test_a_worker_killed_mid_sweep_does_not_change_the_result(serial, cluster):
    from distributed import Client

    with Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one(index, result):
        if not killed:  # after the first finished task, while the others run
            os.kill(pids[0], signal.SIGKILL)
            killed.append(index)

    settings = {k: v for k, v in SWEEP.items() if k != "steps"}
    row, tasks = phase_tasks(**settings, generator=torch.Generator().manual_seed(0), steps=SWEEP["steps"])
    results = engine.run_tasks(row, tasks, scheduler=cluster.scheduler_address, progress=False, on_result=kill_one)
    assert killed, "no task finished"
    assert np.array_equal(np.stack([r["errors"] for r in results]), serial.errors)


class Flaky:
    """Counts the tasks it computes and fails on task ``fail_at`` (an interruption)."""

    def __init__(self, fail_at=None):
        self.computed, self.fail_at = [], fail_at

    def __getstate__(self):  # the counters are bookkeeping, not settings: they stay out of the task fingerprints
        return {}

    def __call__(self, task):
        if task == self.fail_at:
            raise KeyboardInterrupt
        self.computed.append(task)
        return {"value": np.full(3, float(task) ** 2), "task": task}


def test_an_interrupted_sweep_resumes_and_recomputes_only_unfinished_tasks(tmp_path):
    tasks = list(range(10))
    first = Flaky(fail_at=6)
    with pytest.raises(KeyboardInterrupt):
        engine.run_tasks(first, tasks, store=tmp_path, progress=False)
    assert first.computed == [0, 1, 2, 3, 4, 5] and len(list(tmp_path.glob("task-*.npz"))) == 6
    second = Flaky()
    results = engine.run_tasks(second, tasks, store=tmp_path, progress=False)
    assert second.computed == [6, 7, 8, 9]  # four tasks, not ten
    assert [int(r["task"]) for r in results] == tasks
    assert all(np.array_equal(r["value"], np.full(3, float(t) ** 2)) for r, t in zip(results, tasks))
    assert not list(tmp_path.glob(".*.tmp"))  # every write was completed and renamed


def test_a_store_refuses_tasks_of_other_settings(tmp_path):
    _sweep(store=tmp_path)
    with pytest.raises(ValueError, match="another task or study settings"):
        ld.phase_transition(**{**SWEEP, "steps": 61}, generator=torch.Generator().manual_seed(0), progress=False,
                            store=tmp_path)  # fmt: skip
    with pytest.raises(ValueError, match="another task or study settings"):  # other seeds: other tasks
        ld.phase_transition(**SWEEP, generator=torch.Generator().manual_seed(1), progress=False, store=tmp_path)


def test_a_resumed_phase_sweep_equals_the_serial_one(serial_store):
    serial, store = serial_store
    for path in sorted(store.glob("task-*.npz"))[2:]:
        path.unlink()  # as if interrupted after two rows
    assert np.array_equal(_sweep(store=store).errors, serial.errors)
    assert len(list(store.glob("task-*.npz"))) == 4


def test_atomic_write_replaces_a_file_whole(tmp_path):
    path = tmp_path / "result.npz"
    engine.write_npz_atomic(path, {"a": np.arange(3)})
    engine.write_npz_atomic(path, {"a": np.arange(5)})
    with np.load(path, allow_pickle=False) as f:
        assert f["a"].tolist() == [0, 1, 2, 3, 4]
    assert [p.name for p in tmp_path.iterdir()] == ["result.npz"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers"):
        engine.run_tasks(Flaky(), [1], workers=-1)
    with pytest.raises(ValueError, match="not both"):
        engine.run_tasks(Flaky(), [1], workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(TypeError, match="scheduler"):
        engine.run_tasks(Flaky(), [1], scheduler=8786)
    with pytest.raises(TypeError, match="dict of arrays"):
        engine.run_tasks(lambda t: [t], [1], progress=False)
    args = engine.sweep_arguments(["a", "b"], "test", ["--workers", "2", "--only", "b"])
    assert args.workers == 2 and args.only == ["b"] and args.scheduler is None and args.progress
    with pytest.raises(SystemExit):
        engine.sweep_arguments(["a"], "test", ["--workers", "2", "--scheduler", "tcp://x:1"])


def test_memorization_sweep_on_two_workers_equals_serial(cluster):
    from lowdim.experiments.memorization import memorization_sweep

    def run(**kw):
        return memorization_sweep(8, 1, [1, 2], [2, 4], steps=40, n_samples=16, width=16, depth=2,
                                  generator=torch.Generator().manual_seed(0), **kw)  # fmt: skip

    serial, parallel = run(), run(scheduler=cluster.scheduler_address)
    assert np.array_equal(serial.memorized, parallel.memorized) and np.array_equal(serial.residual, parallel.residual)


def test_teacher_student_on_two_workers_equals_serial(cluster):
    from lowdim.experiments.students import teacher_student

    teacher = ld.random_molrg(4, 2, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float32)

    def run(**kw):
        return teacher_student(teacher, [2, 4], widths=[8, 16], depth=2, steps=30, n_eval=16, sample_steps=5,
                               n_show=4, generator=torch.Generator().manual_seed(1), **kw)  # fmt: skip

    serial, parallel = run(), run(scheduler=cluster.scheduler_address)
    for field in ("e_gen", "e_mem", "samples"):
        assert np.array_equal(getattr(serial, field), getattr(parallel, field)), field
    assert serial.params == parallel.params and len(serial.params) == 2


def test_reproducibility_sweep_on_two_workers_equals_serial(cluster):
    from lowdim.experiments.reproducibility import reproducibility_sweep

    data = ld.digits(torch.float32, shuffle=True, generator=torch.Generator().manual_seed(0))[0][:64]

    def run(**kw):
        return reproducibility_sweep(data, [8, 32], {"tiny": {"arch": "mlp", "width": 16, "depth": 1}}, steps=30,
                                     n_eval=16, n_show=2, **kw)  # fmt: skip

    serial, parallel = run(), run(scheduler=cluster.scheduler_address)
    for field in ("rp", "gl", "samples"):
        assert np.array_equal(getattr(serial, field), getattr(parallel, field)), field
    assert serial.samples.shape == (1, 2, 2, 1, 8, 8) and serial.params == parallel.params


def test_jacobian_spectra_on_two_workers_equal_serial(cluster):
    from lowdim.experiments.jacobian_rank import jacobian_spectra

    points = torch.randn(3, 2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    serial, seconds = jacobian_spectra("checkpoints/digits_mlp_n16.pt", points, [0.2, 0.5, 0.8], progress=False)
    parallel, _ = jacobian_spectra("checkpoints/digits_mlp_n16.pt", points, [0.2, 0.5, 0.8], progress=False,
                                   scheduler=cluster.scheduler_address)  # fmt: skip
    assert np.array_equal(serial, parallel) and serial.shape == (3, 2, 64) and (seconds > 0).all()
    # each point's singular values are the full Jacobian's (an independent route: torch.func.jacrev)
    model = copy.deepcopy(engine.cached_model("checkpoints/digits_mlp_n16.pt")).double()
    x = points[1, :1].double()
    J = torch.func.jacrev(lambda v: model(v, torch.tensor([0.5], dtype=torch.float64)))(x)
    np.testing.assert_allclose(serial[1, 0], torch.linalg.svdvals(J.reshape(64, 64)).numpy(), rtol=1e-4, atol=1e-5)


def _assert_same_records(serial, parallel, timings=()):
    """Every field equal bit for bit (NaN where NaN), wall-clock timings aside."""
    a, b = serial.to_arrays(), parallel.to_arrays()
    for name in a:
        if name not in timings:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name, strict=True)


def test_edit_and_watermark_batches_on_two_workers_equal_serial(cluster):
    from lowdim.experiments.loco import EditSpec, edit_study_batches
    from lowdim.experiments.shallow_diffuse import Cell, KeySpec, watermark_study_batches

    checkpoint = "checkpoints/scenes_unet_n16384.pt"
    x0, latents = ld.scenes(2, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    target = torch.tensor([0, 1])

    def edits(**kw):
        return edit_study_batches(checkpoint, x0, latents, target, [EditSpec("loco", 0.5, 2, 2.0, 0)], batch_size=1,
                                  rank=1, progress=False, **kw)  # fmt: skip

    serial, parallel = edits(), edits(scheduler=cluster.scheduler_address)
    assert serial.change.shape == (1, 2, 6)
    _assert_same_records(serial, parallel)

    noise = ld.sample_prior(ld.VP(), (2, 3, 32, 32), torch.Generator().manual_seed(21), torch.float32)

    def marks(**kw):
        return watermark_study_batches(checkpoint, noise, [Cell(0.3, KeySpec("low", 4.0))], batch_size=1, steps=5,
                                       fit_factors=False, attacks=("clean",), progress=False, **kw)  # fmt: skip

    serial, parallel = marks(), marks(scheduler=cluster.scheduler_address)
    assert serial.marked.shape == (1, 1, 2)
    _assert_same_records(serial, parallel, timings=("seconds",))


def _threads_seen(task):
    return {"threads": np.int64(torch.get_num_threads()), "dtype": np.str_(str(torch.get_default_dtype()))}


def test_tasks_run_on_one_thread_with_the_callers_dtype_unless_told(cluster):
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    other = torch.float32 if dtype == torch.float64 else torch.float64
    torch.set_default_dtype(other)
    try:
        serial = engine.run_tasks(_threads_seen, [0], progress=False)[0]
        remote = engine.run_tasks(_threads_seen, [0], scheduler=cluster.scheduler_address, progress=False)[0]
        with engine.task_threads(2):
            two = engine.run_tasks(_threads_seen, [0], progress=False)[0]
            two_remote = engine.run_tasks(_threads_seen, [0], scheduler=cluster.scheduler_address, progress=False)[0]
    finally:
        torch.set_default_dtype(dtype)
    assert int(serial["threads"]) == int(remote["threads"]) == 1
    assert int(two["threads"]) == int(two_remote["threads"]) == 2
    assert str(serial["dtype"]) == str(remote["dtype"]) == str(other)
    assert torch.get_num_threads() == threads  # restored after every task
    with pytest.raises(ValueError, match="threads"):
        with engine.task_threads(0):
            pass


def test_batch_slices_cover_the_items_once_and_check_their_arguments():
    assert engine.batch_slices(10, 4) == [(0, slice(0, 4)), (1, slice(4, 8)), (2, slice(8, 10))]
    assert engine.batch_slices(10, 4, [2]) == [(2, slice(8, 10))]
    with pytest.raises(ValueError, match="batches"):
        engine.batch_slices(10, 4, [3])
    with pytest.raises(ValueError, match="batch_size"):
        engine.batch_slices(10, 0)


def test_task_store_is_removed_after_success_and_kept_after_a_failure(tmp_path):
    result = tmp_path / "study.npz"
    with engine.task_store(result) as store:
        engine.run_tasks(Flaky(), [1, 2], store=store, progress=False)
        assert store == tmp_path / ".tasks" / "study" and len(list(store.iterdir())) == 2
    assert not store.exists()
    with pytest.raises(KeyboardInterrupt), engine.task_store(result) as store:
        engine.run_tasks(Flaky(fail_at=2), [1, 2], store=store, progress=False)
    assert [p.name for p in store.iterdir()] == ["task-00000.npz"]  # kept for the rerun


def _study_fingerprint(_=None):
    from functools import partial

    data = torch.arange(12.0, dtype=torch.float32).reshape(3, 4)  # explicit: pytest's default dtype is float64
    return engine._fingerprint(partial(np.add, data), (3, data[1], torch.tensor(2.5, dtype=torch.float64)))


def test_task_fingerprints_depend_on_values_not_on_the_process():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        other_process = pool.apply(_study_fingerprint)
    assert _study_fingerprint() == other_process != ""  # torch's own pickles of a tensor differ between processes
    from functools import partial

    assert engine._fingerprint(partial(np.add, torch.zeros(2)), 1) != engine._fingerprint(
        partial(np.add, torch.ones(2)), 1
    )
    assert engine._fingerprint(lambda t: t, 1) == ""  # not picklable: not checked


def test_training_curves_on_two_workers_equal_serial(cluster):
    from lowdim.experiments.students import training_curves

    teacher = ld.random_molrg(4, 2, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    pool, _ = teacher.sample(8, generator=torch.Generator().manual_seed(4))

    def run(**kw):
        return training_curves(teacher, pool, [(4, 1), (8, 2)], width=8, depth=1, steps=20, every=10, n_eval=8,
                               progress=False, **kw)  # fmt: skip

    serial, parallel = run(), run(scheduler=cluster.scheduler_address)
    for a, b in zip(serial, parallel):
        for key in ("steps", "e_gen", "e_mem"):
            assert np.array_equal(a[key], b[key]), key
    assert serial[0]["steps"].tolist() == [10, 20] and not np.array_equal(serial[0]["e_gen"], serial[1]["e_gen"])
