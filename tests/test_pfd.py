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


def _diagonal_gaussian(variances, schedule):
    # the library's denoiser of N(0, diag(variances)): shares no code with _isotropic
    variances = torch.as_tensor(variances)
    return ld.GaussianDenoiser(torch.zeros(len(variances)), torch.diag(variances)).denoiser(schedule)


def test_pfd_of_two_implementations_of_one_denoiser_is_zero():
    # _isotropic and GaussianDenoiser compute the same D by different formulas: equal maps up to round-off, so
    # PFD at round-off level (0.0 in this run; ~ sqrt(2) * 0.5 * sqrt(6) ~ 1.7 if the maps ran from different noises)
    schedule = ld.VP()
    twin = _diagonal_gaussian([0.25] * 6, schedule)
    assert pf_distance(_isotropic(0.5, schedule), twin, schedule, (6,), n=64, generator=gen(0)) < 1e-10


def test_pfd_is_symmetric_for_different_denoisers():
    schedule = ld.VP()
    D1, D2 = _isotropic(0.5, schedule), _diagonal_gaussian([2.25, 0.25, 1.0, 4.0, 0.01, 1.0], schedule)
    a = pf_distance(D1, D2, schedule, (6,), n=64, generator=gen(0))
    b = pf_distance(D2, D1, schedule, (6,), n=64, generator=gen(0))
    assert a > 0.5 and abs(a - b) <= 1e-12 * a


# In sigma = beta / alpha and x~ = x / alpha the PF-ODE is dx~/dsigma = (x~ - D) / sigma; for N(0, diag(v)),
# D = v / (v + sigma^2) x~ per coordinate, so dx~/dsigma = sigma / (v + sigma^2) x~ and x~ is proportional to
# sqrt(v + sigma^2). From x_1 the flow lands on c x_1 with c = sqrt(v) / sqrt(alpha_1^2 v + beta_1^2).
@pytest.mark.parametrize("schedule", [ld.VP(beta_max=2.0), ld.VE()], ids=repr)
def test_pfd_between_gaussians_matches_the_closed_form_flow(schedule):
    d, n = 4, 2000
    v1, v2 = torch.tensor([0.25, 1.0, 2.25, 0.01]), torch.tensor([2.25, 0.25, 1.0, 1.0])
    got = pf_distance(
        _diagonal_gaussian(v1, schedule), _diagonal_gaussian(v2, schedule), schedule, (d,), n=n, steps=200,
        generator=gen(1),
    )  # fmt: skip
    a1, b1 = schedule.alpha(torch.tensor(1.0)), schedule.beta(torch.tensor(1.0))
    c1, c2 = (v.sqrt() / (a1**2 * v + b1**2).sqrt() for v in (v1, v2))
    # same noises: within 5e-4 (relative) of the exact linear maps, the gap being the sampler's last step from
    # t_min = 1e-3 to 0, which returns D(x) instead of flowing (the step count does not change it)
    x_T = ld.sample_prior(schedule, (n, d), generator=gen(1))
    exact = float((((c1 - c2) * x_T) ** 2).sum(1).mean().sqrt())
    assert math.isclose(got, exact, rel_tol=1e-3)
    # population value, with x_1 ~ N(0, beta_1^2 I): sum_i (c1_i - c2_i)^2 x_i^2 / beta_1^2 has mean m and variance
    # 2 sum_i (c1_i - c2_i)^4; the RMS over n noises has relative standard error sd / (2 m sqrt(n)) (delta method)
    w = (c1 - c2) ** 2
    m = float(w.sum())
    rel_se = float((2 * (w**2).sum()).sqrt()) / (2 * m * math.sqrt(n))
    assert abs(got / (float(b1) * math.sqrt(m)) - 1) < 4 * rel_se


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
