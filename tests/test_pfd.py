"""Probability flow distance."""

import math

import pytest
import torch

import lowdim as ld
from lowdim.pfd import pf_distance

from .conftest import gen


def _isotropic(s: float, schedule):
    # exact denoiser of N(0, s^2 I): D(x, t) = alpha s^2 / (alpha^2 s^2 + beta^2) x
    def D(x, t):
        a, b = schedule.alpha(t)[:, None], schedule.beta(t)[:, None]
        return a * s**2 / (a**2 * s**2 + b**2) * x

    return D


def test_pfd_is_zero_on_the_diagonal_and_symmetric():
    schedule = ld.VP()
    D1, D2 = _isotropic(0.5, schedule), _isotropic(1.5, schedule)
    assert pf_distance(D1, D1, schedule, (6,), n=64, generator=gen(0)) == 0.0
    a = pf_distance(D1, D2, schedule, (6,), n=64, generator=gen(0))
    b = pf_distance(D2, D1, schedule, (6,), n=64, generator=gen(0))
    assert a == b and a > 0


def test_pfd_between_gaussians_matches_the_closed_form_flow():
    # the PF-ODE of N(0, s^2 I) is linear: from x_1 it lands on s x_1 / sqrt(alpha_1^2 s^2 + beta_1^2);
    # Heun with 200 steps is within 3e-4 of it (40 steps: 1e-2)
    schedule, d, n = ld.VP(), 5, 300
    s1, s2 = 0.5, 1.5
    got = pf_distance(
        _isotropic(s1, schedule), _isotropic(s2, schedule), schedule, (d,), n=n, steps=200, generator=gen(1)
    )
    x_T = ld.sample_prior(schedule, (n, d), generator=gen(1))
    a1, b1 = schedule.alpha(torch.tensor(1.0)), schedule.beta(torch.tensor(1.0))
    c1, c2 = (s / (a1**2 * s**2 + b1**2).sqrt() for s in (s1, s2))
    exact = float(abs(c1 - c2) * (x_T**2).sum(1).mean().sqrt())
    assert math.isclose(got, exact, rel_tol=2e-3)


def test_pfd_validates_its_inputs():
    schedule = ld.VP()
    D = _isotropic(1.0, schedule)
    with pytest.raises(ValueError, match="^shape"):
        pf_distance(D, D, schedule, 6)
    with pytest.raises(ValueError, match="^n"):
        pf_distance(D, D, schedule, (6,), n=0)
    with pytest.raises(TypeError, match="^D2"):
        pf_distance(D, None, schedule, (6,))


def test_teacher_student_result_round_trips_and_finds_the_crossover(tmp_path):
    import numpy as np

    from lowdim.experiments.students import TeacherStudent

    gen_err = np.array([[3.0, 2.0, 1.0, 1.2], [3.0, 2.0, 1.5, 1.0]])
    mem_err = np.array([[1.0, 1.5, 1.1, 1.3], [1.0, 2.5, 1.0, 1.1]])
    result = TeacherStudent([8, 16], [4, 8, 16, 32], [100, 400], gen_err, mem_err, np.zeros((2, 4, 3, 5), np.float32),
                            np.ones((32, 5), np.float32), 7)  # fmt: skip
    # width 8 has E_gen < E_mem at N = 8 but not at 16: the crossover is where it *stays* below
    np.testing.assert_array_equal(result.crossover(), [16, 32])
    result.save(tmp_path / "ts.npz")
    back = TeacherStudent.load(tmp_path / "ts.npz")
    assert back.widths == [8, 16] and back.eval_seed == 7
    np.testing.assert_array_equal(back.e_gen, gen_err)
