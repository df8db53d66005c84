"""Samplers on problems with exact answers: a rank-r Gaussian in d = 20 and a finite training set."""

import numpy as np
import pytest
import torch

import lowdim as ld
from tests.conftest import gen

D_AMBIENT, RANK = 20, 4


@pytest.fixture(scope="module")
def gaussian():
    # module-scoped, so it is set up before the autouse float64 fixture: ask for float64 rather than set the default
    return ld.random_molrg(D_AMBIENT, 1, RANK, generator=gen(0), dtype=torch.float64)


def moments(x, U):
    cov = x.T @ x / len(x)
    P = U @ U.T
    rel_cov_err = ((cov - P).norm() / P.norm()).item()
    off_energy = (((x - x @ P) ** 2).sum() / (x**2).sum()).item()
    return rel_cov_err, off_energy


def sample_with_last_state(D, x_T, schedule, **kw):
    """Samples and the scaled state x_t / alpha_t at the last grid time t_min, before the final denoising step
    (which returns D itself and would hide the solver's error)."""
    seen = []
    x = ld.sample(D, x_T, schedule, callback=seen.append, **kw)
    last = seen[-1]
    return x, last["x"] / schedule.alpha(last["t"])


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_heun_pf_ode_recovers_low_rank_gaussian(gaussian, schedule):
    U = gaussian.bases[0]
    x_T = ld.sample_prior(schedule, (20_000, D_AMBIENT), generator=gen(1))
    x, x_last = sample_with_last_state(gaussian.denoiser(schedule), x_T, schedule, steps=50, method="heun")
    rel_cov_err, off_energy = moments(x, U)
    # Monte-Carlo error of the relative covariance is about sqrt((r + 1) / n) = 1.6 %.
    assert rel_cov_err < 0.05
    # At t_min the exact flow keeps an off-subspace energy fraction (d - r) sigma_min^2 / r ~ 4e-4.
    assert moments(x_last, U)[1] < 1e-3
    assert off_energy < 1e-20  # the last step returns D, which lies on the subspace


def errors_against_reference(gaussian, schedule, method, steps, seed):
    """RMS distance of ``method`` at each number of steps to a 1,000-step Heun solution from the same noise."""
    x_T = ld.sample_prior(schedule, (200, D_AMBIENT), generator=gen(seed))
    D = gaussian.denoiser(schedule)
    reference = ld.sample(D, x_T, schedule, steps=1000, method="heun")
    errors = [(ld.sample(D, x_T, schedule, n, method) - reference).pow(2).mean().sqrt().item() for n in steps]
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    return np.array(errors), slope


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_heun_converges_at_least_like_steps_to_minus_1_5(gaussian, schedule):
    errors, slope = errors_against_reference(gaussian, schedule, "heun", [8, 16, 32, 64], seed=2)
    assert slope <= -1.5, f"Heun error decays like steps^{slope:.2f}"
    assert errors[-1] < 5e-3


def test_ddim_converges_at_first_order(gaussian):
    _, slope = errors_against_reference(gaussian, ld.VP(), "ddim", [16, 32, 64, 128], seed=3)
    assert -1.3 < slope < -0.8


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_reverse_sde_matches_moments(gaussian, schedule):
    # The ancestral step is first order: its variance bias is about 10 / steps here (checked below), so at
    # 1,000 steps it is ~1 %; the Monte-Carlo error of the mean variance is sqrt(2 / (n r)) = 0.7 %.
    U = gaussian.bases[0]
    n = 10_000
    x_T = ld.sample_prior(schedule, (n, D_AMBIENT), generator=gen(4))
    D = gaussian.denoiser(schedule)
    x, x_last = sample_with_last_state(D, x_T, schedule, steps=1000, method="sde", generator=gen(5))
    rel_cov_err, _ = moments(x, U)
    assert rel_cov_err < 0.05 and moments(x_last, U)[1] < 1e-3
    var = torch.trace(U.T @ x.T @ x @ U).item() / (n * RANK)
    assert abs(var - 1) < 4 * (2 / (n * RANK)) ** 0.5 + 1e-2
    assert x.mean(0).abs().max().item() < 5 / n**0.5


def test_reverse_sde_bias_is_first_order(gaussian):
    schedule = ld.VP()
    U = gaussian.bases[0]
    x_T = ld.sample_prior(schedule, (10_000, D_AMBIENT), generator=gen(4))
    bias = []
    for steps in (25, 50, 100):
        x = ld.sample(gaussian.denoiser(schedule), x_T, schedule, steps=steps, method="sde", generator=gen(5))
        bias.append(1 - torch.trace(U.T @ x.T @ x @ U).item() / (len(x) * RANK))
    assert bias[0] > bias[1] > bias[2] > 0
    assert 1.6 < bias[0] / bias[1] < 2.4 and 1.6 < bias[1] / bias[2] < 2.4


def test_sde_is_reproducible_and_seed_dependent(gaussian):
    schedule = ld.VP()
    D = gaussian.denoiser(schedule)
    x_T = ld.sample_prior(schedule, (8, D_AMBIENT), generator=gen(6))
    a = ld.sample(D, x_T, schedule, 20, "sde", generator=gen(7))
    b = ld.sample(D, x_T, schedule, 20, "sde", generator=gen(7))
    c = ld.sample(D, x_T, schedule, 20, "sde", generator=gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("method", ["heun", "ddim", "sde"])
def test_pf_ode_with_empirical_denoiser_lands_on_training_points(method):
    schedule = ld.VP()
    train = torch.randn(10, 2, generator=gen(9))
    D = ld.EmpiricalDenoiser(train).denoiser(schedule)
    x_T = ld.sample_prior(schedule, (200, 2), generator=gen(10))
    x, x_last = sample_with_last_state(D, x_T, schedule, steps=50, method=method, generator=gen(11))
    # Before the final denoising step the state is already within ~sigma_min of a training point ...
    assert torch.cdist(x_last, train).min(1).values.max().item() < 0.05
    assert torch.cdist(x, train).min(1).values.max().item() < 1e-2
    # ... and it is the same training point that a 400-step solution reaches from the same noise.
    if method != "sde":
        reference = ld.sample(D, x_T, schedule, steps=400, method=method)
        same = (torch.cdist(x, train).argmin(1) == torch.cdist(reference, train).argmin(1)).float().mean().item()
        assert same >= 0.95


def test_ddim_equals_euler_in_scaled_variables(gaussian):
    # Theorem of the chapter: DDIM is Euler's method on dx~/dsigma = (x~ - D)/sigma, x~ = x/alpha.
    schedule = ld.VP()
    D = gaussian.denoiser(schedule)
    grid = ld.time_grid(schedule, 12)
    x = ld.sample_prior(schedule, (16, D_AMBIENT), generator=gen(11))
    expected = ld.sample(D, x, schedule, method="ddim", t_grid=grid)
    for t, t_next in zip(grid[:-1], grid[1:]):
        a, s, a_next, s_next = schedule.alpha(t), schedule.sigma(t), schedule.alpha(t_next), schedule.sigma(t_next)
        x_tilde = x / a
        x = a_next * (x_tilde + (s_next - s) * (x_tilde - D(x, t.expand(16))) / s)
    torch.testing.assert_close(x, expected, rtol=1e-10, atol=1e-10)


def test_time_grid_shape_and_order():
    for schedule in (ld.VP(), ld.VE()):
        grid = ld.time_grid(schedule, 10)
        assert grid.shape == (11,) and grid[0] == 1 and grid[-1] == 0 and grid[-2] == pytest.approx(1e-3)
        assert bool((grid[1:] < grid[:-1]).all())
        sig = schedule.sigma(grid[:-1])
        # rho = 7: sigma^(1/7) is uniform on the grid.
        torch.testing.assert_close(torch.diff(sig ** (1 / 7)), torch.diff(sig ** (1 / 7)).mean().expand(9))


def test_callback_sees_every_step(gaussian):
    seen = []
    schedule = ld.VE()
    x_T = ld.sample_prior(schedule, (3, D_AMBIENT), generator=gen(12))
    ld.sample(gaussian.denoiser(schedule), x_T, schedule, steps=7, method="heun", callback=seen.append)
    assert [s["i"] for s in seen] == list(range(7))
    assert all(s["denoised"].shape == (3, D_AMBIENT) for s in seen)
