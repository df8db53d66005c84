"""The shared result helpers of lowdim.experiments: safe .npz round trips and the size at which a condition holds."""

from dataclasses import dataclass

import numpy as np
import pytest

from lowdim.experiments import NpzResult, PhaseTransition, smallest_size


@dataclass
class Toy(NpzResult):
    name: str
    count: int
    level: float
    sizes: list[int]
    labels: list[str]
    values: np.ndarray


def test_round_trip_restores_every_field_with_its_type(tmp_path):
    toy = Toy("x", 3, 0.5, [1, 2, 4], ["a", "b"], np.arange(6.0).reshape(2, 3))
    toy.save(tmp_path / "toy.npz")
    back = Toy.load(tmp_path / "toy.npz")
    assert (back.name, back.count, back.level, back.sizes, back.labels) == ("x", 3, 0.5, [1, 2, 4], ["a", "b"])
    assert type(back.count) is int and type(back.level) is float and type(back.sizes[0]) is int
    np.testing.assert_array_equal(back.values, toy.values)
    with np.load(tmp_path / "toy.npz", allow_pickle=False) as f:  # plain arrays: readable without pickle
        assert set(f.files) == {"name", "count", "level", "sizes", "labels", "values"}


def test_saving_refuses_what_needs_pickle(tmp_path):
    with pytest.raises(TypeError, match="values"):
        Toy("x", 1, 0.0, [1], ["a"], np.array([{"a": 1}], dtype=object)).save(tmp_path / "bad.npz")


def test_smallest_size_sustained_and_first():
    sizes = [2, 4, 8, 16]
    holds = np.array([[False, True, False, True], [True, True, True, True], [False, False, False, False]])
    np.testing.assert_array_equal(smallest_size(sizes, holds), [16, 2, np.nan])
    np.testing.assert_array_equal(smallest_size(sizes, holds, sustained=False), [4, 2, np.nan])
    with pytest.raises(ValueError, match="holds"):
        smallest_size(sizes, holds[:, :3])


def test_phase_boundary_and_its_line_against_a_hand_computed_fit():
    # success rows reach 0.5 first at N = 2, 4, 6 for r = 1, 2, 3: the boundary is N = 2 r exactly (slope 2, R^2 1)
    errors = np.ones((3, 6, 2))
    for i, first in enumerate([1, 3, 5]):
        errors[i, first:] = 0.0
    sweep = PhaseTransition("pca", 8, 1, [1, 2, 3], [1, 2, 3, 4, 5, 6], errors, 0.1)
    np.testing.assert_array_equal(sweep.boundary(), [2, 4, 6])
    np.testing.assert_allclose(sweep.linear_boundary(), (2.0, 0.0, 1.0), atol=1e-12)
