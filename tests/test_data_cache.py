"""Every cached result in data/ is reproduced by its script: recompute a small part and compare."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lowdim as ld
from lowdim.experiments.engine import task_threads
from lowdim.experiments.memorization import MemorizationSweep
from lowdim.experiments.reproducibility import ReproducibilitySweep
from lowdim.experiments.students import TeacherStudent

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(autouse=True)
def as_the_scripts_run():
    """A recomputation runs as its script did: float32 as the default dtype (the suite's is float64; the engine hands
    the caller's default to every task). It is compared with its file up to a tolerance, not bit for bit, so its
    tasks may use every core."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with task_threads(torch.get_num_threads()):
            yield
    finally:
        torch.set_default_dtype(default)


def load_script(name):
    # a script may import its sibling scripts (make_checkpoints shares the digits pool of make_reproducibility),
    # as it can when run as `python data/make_x.py`
    if str(DATA) not in sys.path:
        sys.path.insert(0, str(DATA))
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, K, ranks", [("phase_k1_dae", 1, [1, 2]), ("phase_k2_dae", 2, [1])])
def test_phase_sweep_cache_matches_a_recomputation_of_its_first_rows(name, K, ranks):
    script = load_script("make_phase")
    cached = ld.PhaseTransition.load(script.path(name))
    settings = script.SWEEPS[name]
    assert (cached.K, cached.d) == (K, settings["d"])
    assert cached.ranks == settings["ranks"] and cached.sample_sizes == settings["sample_sizes"]
    assert cached.errors.shape == (8, 15, 20)
    fresh = script.compute(name, ranks=ranks)  # rows are independently seeded, so these equal the cached rows
    np.testing.assert_array_equal(fresh.success, cached.success[: len(ranks)])
    np.testing.assert_allclose(fresh.errors, cached.errors[: len(ranks)], rtol=1e-3, atol=1e-4)


def test_a_missing_cache_names_its_script(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWDIM_DATA", str(tmp_path))
    (tmp_path / "make_phase.py").write_text("")
    with pytest.raises(FileNotFoundError, match="make_phase.py"):
        ld.data_path("phase_k9_dae.npz")


def test_memorization_cache_matches_a_recomputation_of_one_cell():
    script = load_script("make_memorization")
    cached = MemorizationSweep.load(script.PATH)
    assert cached.ranks == script.SETTINGS["ranks"] and cached.sample_sizes == script.SETTINGS["sample_sizes"]
    n = cached.sample_sizes[0]
    fresh = script.compute(ranks=cached.ranks[:1], sample_sizes=[n])  # cells are seeded by (row, N)
    # Same machine: identical. Elsewhere 16,000 Adam steps may amplify last-bit differences of the CPU's kernels,
    # so the two statistics of 200 samples are compared with room for that.
    np.testing.assert_allclose(fresh.memorized[0, 0], cached.memorized[0, 0], atol=0.1)
    np.testing.assert_allclose(fresh.residual[0, 0], cached.residual[0, 0], rtol=0.3)


def test_memorization_transition_is_where_the_fraction_stays_low():
    sweep = MemorizationSweep(
        48, 2, [1, 2], [2, 4, 8, 16], np.array([[0.9, 0.4, 0.6, 0.1], [0.2, 0.1, 0.0, 0.0]]), np.zeros((2, 4))
    )
    np.testing.assert_array_equal(sweep.transition(0.5), [16, 2])


def _linear_fit_r2(x, y):
    slope, intercept = np.polyfit(x, y, 1)
    fit = slope * x + intercept
    return slope, 1 - ((y - fit) ** 2).sum() / ((y - y.mean()) ** 2).sum()


@pytest.mark.parametrize("name, method, level", [("phase_k1_dae", "pca", 0.90), ("phase_k2_dae", "ksubspaces", 0.85)])
def test_cached_dae_heat_map_agrees_with_the_classical_method(name, method, level):
    # Issue 3: the trained DAE's heat map agrees with PCA's (K = 1) on >= 90 % of the cells and with K-subspaces'
    # (K = 2) on >= 85 %, a cell agreeing when both lie on the same side of 50 % success (the phase map). The
    # stricter cell-by-cell reading (success rates within 0.1) holds for K = 1 and gives 79 % for K = 2 (chapter 7).
    script = load_script("make_phase")
    cached = ld.PhaseTransition.load(script.path(name))
    settings = {k: v for k, v in script.SWEEPS[name].items() if k not in ("method", "steps")}
    reference = ld.phase_transition(method, **settings, generator=torch.Generator().manual_seed(0))
    assert ((cached.success >= 0.5) == (reference.success >= 0.5)).mean() >= level
    if cached.K == 1:
        assert (np.abs(cached.success - reference.success) <= 0.1).mean() >= level
    if cached.K == 2:  # the boundary N*(r) increases with r and is fitted by a line with R^2 >= 0.9
        for sweep in (cached, reference):
            boundary = sweep.boundary(0.5)
            assert not np.isnan(boundary).any() and np.all(np.diff(boundary) >= 0) and boundary[-1] > boundary[0]
            slope, r2 = _linear_fit_r2(np.array(sweep.ranks, dtype=float), boundary)
            assert slope > 0 and r2 >= 0.9


def _same_cpu(meta) -> bool:
    return meta.get("cpu_capability") == torch.backends.cpu.get_cpu_capability()


@pytest.mark.parametrize("name", ["digits_mlp_n16", "digits_unet_n1024", "shapes_unet_n8192", "scenes_unet_n16384"])
def test_checkpoint_reproduces_its_cached_samples(name):
    # Issue 4: loading a checkpoint (weights_only=True) and sampling with the fixed seed gives the samples drawn
    # right after training, bit for bit on a CPU with the same instruction set (elsewhere kernels may round the
    # last bit differently, so within 1e-4), and each network trained in at most 5 minutes.
    script = load_script("make_checkpoints")
    model, meta = ld.load_checkpoint(script.FOLDER / f"{name}.pt")
    assert meta["n_train"] == script.MODELS[name]["n_train"]
    assert meta["train_seconds"] <= script.MODELS[name].get("budget_seconds", 300)
    fresh = script.reference_samples(model, meta.get("data", "digits"))
    if _same_cpu(meta):
        assert torch.equal(fresh, meta["samples"])
    else:
        torch.testing.assert_close(fresh, meta["samples"], atol=1e-4, rtol=0)


def test_scenes_checkpoint_draws_crisp_two_object_scenes():
    # issue 13's bar for the editing network: the two-object scene fitted to each sample explains it to a small RMS
    # residual on most samples (recorded at training time); the first samples drawn again refit to the same residuals
    script = load_script("make_checkpoints")
    model, meta = ld.load_checkpoint(script.FOLDER / "scenes_unet_n16384.pt")
    residual = meta["sample_residual"]
    assert float((residual < script.CRISP).float().mean()) >= script.CRISP_FRACTION
    fresh = script.sample_quality(model, n=8)
    torch.testing.assert_close(fresh, residual[:8], rtol=0, atol=2e-3)


def test_every_checkpoint_trained_within_its_budget():
    script = load_script("make_checkpoints")
    for name in script.MODELS:
        _, meta = ld.load_checkpoint(script.FOLDER / f"{name}.pt")
        assert meta["train_seconds"] <= script.MODELS[name].get("budget_seconds", 300), name


@pytest.mark.parametrize(
    "name", ["reproducibility_digits", "reproducibility_digits_seeds23", "reproducibility_digits_seeds45"]
)
def test_reproducibility_cache_matches_a_recomputation_of_one_cell(name):
    script = load_script("make_reproducibility")
    cached = ReproducibilitySweep.load(DATA / f"{name}.npz")
    assert cached.capacities == list(script.CAPACITIES) and cached.sample_sizes == script.SIZES
    assert cached.seconds.max() <= 300
    capacity, n = cached.capacities[0], cached.sample_sizes[0]
    # every network is seeded on its own: the first cell's two networks, from the file's seed pair
    fresh = script.compute(capacities=[capacity], sample_sizes=[n], seeds=script.SEED_PAIRS[name], progress=False)
    # scores of 500 samples each: equal on this machine, within 0.1 where last-bit differences grow in training
    np.testing.assert_allclose(fresh.rp[0, 0], cached.rp[0, 0], atol=0.1)
    np.testing.assert_allclose(fresh.gl[0, 0], cached.gl[0, 0], atol=0.1)


def test_teacher_student_recomputation_memorizes_small_and_generalizes_large_sets():
    # Issue 4: on a small grid of N, the student trained on the smallest N has E_mem < E_gen (it memorizes) and the
    # one trained on the largest N has E_gen < E_mem (it generalizes); both cells agree with the cache.
    script = load_script("make_teacher_student")
    cached = TeacherStudent.load(script.PATH)
    assert cached.widths == script.WIDTHS and cached.sample_sizes == script.SIZES
    sizes = [script.SIZES[0], script.SIZES[-1]]
    fresh = script.compute(widths=script.WIDTHS[:1], sample_sizes=sizes)
    assert fresh.e_mem[0, 0] < fresh.e_gen[0, 0]
    assert fresh.e_gen[0, 1] < fresh.e_mem[0, 1]
    np.testing.assert_allclose(fresh.e_gen[0], cached.e_gen[0, [0, -1]], rtol=0.1)
    np.testing.assert_allclose(fresh.e_mem[0], cached.e_mem[0, [0, -1]], rtol=0.1)


def test_teacher_student_curves_cache_matches_its_first_points():
    script = load_script("make_teacher_student")
    every = script.CURVES["every"]
    n = script.CURVES["sizes"][0]
    with np.load(script.CURVES_PATH, allow_pickle=False) as cached:
        cached = {k: cached[k] for k in cached.files}
    fresh = script.compute_curves([(n, n)], steps=2 * every, progress=False)  # constant step size: a long run's prefix
    np.testing.assert_array_equal(fresh[f"steps_{n}"], cached[f"steps_{n}"][:2])
    for key in (f"e_gen_{n}", f"e_mem_{n}"):
        np.testing.assert_allclose(fresh[key], cached[key][:2], rtol=0.05)


def test_teacher_student_replicates_cache_matches_its_first_points():
    # the N = 128 replicates: other seeds, the same pool and evaluation noise; the first of them recomputed for two
    # evaluations
    script = load_script("make_teacher_student")
    n, seed = script.REPLICATES["size"], script.REPLICATES["seeds"][0]
    with np.load(script.REPLICATES_PATH, allow_pickle=False) as f:
        cached = {k: f[k] for k in f.files}
    assert sorted(cached) == sorted(
        f"{k}_{n}_s{s}" for k in ("steps", "e_gen", "e_mem") for s in script.REPLICATES["seeds"]
    )
    fresh = script.compute_curves([(n, seed)], steps=2 * script.CURVES["every"], progress=False)
    np.testing.assert_array_equal(fresh[f"steps_{n}_s{seed}"], cached[f"steps_{n}_s{seed}"][:2])
    for key in (f"e_gen_{n}_s{seed}", f"e_mem_{n}_s{seed}"):
        np.testing.assert_allclose(fresh[key], cached[key][:2], rtol=0.05)


def test_jacobian_spectra_cache_matches_a_recomputed_point():
    # chapter 8's d = 3072 spectra: one full Jacobian recomputed (about a minute) gives the same singular values
    # up to float32 round-off in the network, and the same rank by energy
    script = load_script("make_jacobian_ranks")
    with np.load(script.PATH, allow_pickle=False) as f:
        times, cached = f["times"].tolist(), f["singular_values"]
    assert times == script.TIMES and cached.shape == (len(script.TIMES), script.DRAWS, 3072)
    i = times.index(0.5)
    fresh = script.compute(times=[i], progress=False)[0][0]
    np.testing.assert_allclose(fresh, cached[i], rtol=1e-3, atol=1e-4 * cached[i].max())
    ranks = [ld.effective_rank(torch.as_tensor(s)).tolist() for s in (fresh, cached[i])]
    assert abs(ranks[0][0] - ranks[1][0]) <= 0.002 * 3072


def _loco_rows(study, specs):
    return [int(study.rows(method=s.method, t=s.t, null_rank=s.null_rank, lam=s.lam, direction=s.direction)[0])
            for s in specs]  # fmt: skip


def _assert_same_records(fresh, cached, rows, n):
    # the factors come from Adam fits of float32 images: equal up to round-off, and so are the test's verdicts
    for name in ("change", "other_change", "outside_rms", "psnr_outside", "ssim_outside"):
        np.testing.assert_allclose(getattr(fresh, name), getattr(cached, name)[rows, :n], rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(fresh.kind_flip, cached.kind_flip[rows, :n])
    agree = fresh.outcomes()["success"] == cached.outcomes()["success"][rows, :n]
    assert agree.mean() >= 0.9


def test_loco_evaluation_cache_matches_a_recomputed_batch():
    # chapter 10's held-out evaluation: the first batch of eight scenes recomputed for LOCO's v1 at +-lambda* and the
    # two deterministic baselines (about a minute), against the file; the file's settings are the sweep's choice
    script = load_script("make_loco")
    from lowdim.experiments.loco import EditSpec, EditStudy

    cached = EditStudy.load(script.EVAL_PATH)
    settings = EditStudy.load(script.SWEEP_PATH).best_settings()
    loco = cached.rows(method="loco")
    assert set(cached.t) == {settings["t"]} and set(cached.null_rank[loco]) == {settings["null_rank"]}
    assert np.abs(cached.lam[loco]).min() == settings["lam"] and cached.change.shape[1] == script.EVAL_N
    t, r, lam = settings["t"], settings["null_rank"], settings["lam"]
    specs = [EditSpec("loco", t, r, lam, 0), EditSpec("loco", t, r, -lam, 0), EditSpec("masked", t, 0, lam),
             EditSpec("unmasked", t, 0, lam)]  # fmt: skip
    fresh = script.run(script.EVAL_SEED, script.EVAL_N, specs, batches=[0], progress=False)
    _assert_same_records(fresh, cached, _loco_rows(cached, specs), script.BATCH)


def test_shallow_diffuse_cache_matches_recomputed_images():
    # chapter 11's sweep: the first eight noises of batch 0 recomputed for both keys at t* = 0.3 and Tree-Ring
    # (about 30 s), against the file: same scores, PSNR and leak up to float32 round-off across batch sizes
    script = load_script("make_shallow_diffuse")
    from lowdim.experiments.shallow_diffuse import Cell, KeySpec, WatermarkStudy

    cached = WatermarkStudy.load(script.PATH)
    assert cached.cells() == script.cells() and cached.marked.shape[-1] == script.N
    cells = [Cell(0.3, KeySpec("low", script.RADIUS)), Cell(0.3, KeySpec("high", script.RADIUS)),
             Cell(1.0, KeySpec("low", script.RADIUS))]  # fmt: skip
    fresh = script.compute(batches=[0], rows=8, study_cells=cells, fit_factors=False, progress=False)
    rows = [cached.index(c) for c in cells]
    for name in ("marked", "clean"):
        np.testing.assert_allclose(getattr(fresh, name), getattr(cached, name)[rows, ..., :8], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fresh.psnr, cached.psnr[rows, :8], atol=0.05)
    np.testing.assert_allclose(fresh.leak, cached.leak[rows, :8], rtol=1e-3)


def test_loco_sweep_cache_matches_a_recomputed_batch():
    # the sweep's first time (the SVD stream of a batch is consumed in time order): v1 with and without projection
    script = load_script("make_loco")
    from lowdim.experiments.loco import EditSpec, EditStudy

    cached = EditStudy.load(script.SWEEP_PATH)
    t, lam = script.TIMES[0], script.LAMBDAS[1]
    specs = [EditSpec("loco", t, r, lam, 0) for r in (0, max(script.NULL_RANKS))]
    fresh = script.run(script.TUNE_SEED, script.TUNE_N, specs, batches=[0], progress=False)
    _assert_same_records(fresh, cached, _loco_rows(cached, specs), script.BATCH)
