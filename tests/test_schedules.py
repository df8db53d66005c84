"""Schedules: g(t)^2 against finite differences of alpha, beta; boundary values; sigma inverse."""

import pytest
import torch

import lowdim as ld

SCHEDULES = [ld.VP(), ld.VE(), ld.VP(beta_min=0.5, beta_max=0.5), ld.VE(sigma_min=0.002, sigma_max=80.0)]
TIMES = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_g_squared_matches_finite_differences(schedule):
    # g^2 = d(beta^2)/dt - 2 beta^2 dlog(alpha)/dt, derivatives by central differences (error O(h^2) ~ 1e-10).
    h = 1e-5
    dbeta2 = (schedule.beta(TIMES + h) ** 2 - schedule.beta(TIMES - h) ** 2) / (2 * h)
    dlog_alpha = (torch.log(schedule.alpha(TIMES + h)) - torch.log(schedule.alpha(TIMES - h))) / (2 * h)
    g2_fd = dbeta2 - 2 * schedule.beta(TIMES) ** 2 * dlog_alpha
    torch.testing.assert_close(schedule.diffusion(TIMES) ** 2, g2_fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_drift_is_dlog_alpha_times_x(schedule):
    h = 1e-6
    x = torch.randn(25, 3, generator=torch.Generator().manual_seed(0))
    dlog_alpha = (torch.log(schedule.alpha(TIMES + h)) - torch.log(schedule.alpha(TIMES - h))) / (2 * h)
    torch.testing.assert_close(schedule.drift(x, TIMES), dlog_alpha[:, None] * x, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_boundaries_and_sigma_inverse(schedule):
    zero = torch.tensor(0.0)
    assert schedule.alpha(zero).item() == pytest.approx(1.0)
    assert schedule.beta(zero).item() == 0.0  # x_0 is the clean data
    sig = schedule.sigma(TIMES)
    torch.testing.assert_close(schedule.t_from_sigma(sig), TIMES, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(sig, schedule.beta(TIMES) / schedule.alpha(TIMES), rtol=1e-12, atol=0)
    assert bool(torch.isfinite(schedule.diffusion(torch.tensor([0.0, 1.0]))).all())


def test_vp_preserves_variance_and_default_endpoints():
    vp = ld.VP()
    torch.testing.assert_close(vp.alpha(TIMES) ** 2 + vp.beta(TIMES) ** 2, torch.ones_like(TIMES))
    # alpha_1 = exp(-(0.1 + 20) / 4): the data is almost gone at t = 1.
    assert vp.alpha(torch.tensor(1.0)).item() == pytest.approx(6.57e-3, rel=1e-2)
    assert ld.VE().beta(torch.tensor(1.0)).item() == pytest.approx(50.0, rel=1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ld.VP(beta_min=-1.0), "beta_min"),
        (lambda: ld.VP(beta_min=2.0, beta_max=1.0), "beta_max"),
        (lambda: ld.VE(sigma_min=0.0), "sigma_min"),
        (lambda: ld.VE(sigma_min=5.0, sigma_max=1.0), "sigma_max"),
    ],
)
def test_bad_schedule_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()
