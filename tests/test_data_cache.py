"""Every cached result in data/ is reproduced by its script: recompute a small part and compare."""

import importlib.util
from pathlib import Path

import numpy as np

import lowdim as ld

DATA = Path(__file__).resolve().parents[1] / "data"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_phase_k1_dae_cache_matches_a_recomputation_of_its_first_rows():
    script = load_script("make_phase_k1")
    cached = ld.PhaseTransition.load(script.PATH)
    assert cached.ranks == script.SETTINGS["ranks"] and cached.sample_sizes == script.SETTINGS["sample_sizes"]
    assert cached.errors.shape == (8, 15, 20)
    fresh = script.compute(ranks=[1, 2])  # rows are independently seeded, so these equal the cached rows
    np.testing.assert_array_equal(fresh.success, cached.success[:2])
    np.testing.assert_allclose(fresh.errors, cached.errors[:2], rtol=1e-3, atol=1e-4)
