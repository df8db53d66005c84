"""Forward process: Euler–Maruyama marginals match alpha_t x_0 + beta_t eps within Monte-Carlo error."""

import pytest
import torch

import lowdim as ld
from tests.conftest import gen


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_euler_maruyama_marginals(schedule):
    n, steps = 20_000, 2_000
    x0 = torch.tensor([[1.5, -0.5]]).expand(n, 2).contiguous()
    path = ld.simulate_forward_sde(x0, schedule, steps, generator=gen(1))
    assert path.shape == (steps + 1, n, 2)
    for i in (200, 800, 1400, 2000):  # t = 0.1, 0.4, 0.7, 1.0
        t = torch.tensor(i / steps)
        alpha, beta = schedule.alpha(t).item(), schedule.beta(t).item()
        x = path[i]
        # Mean: standard error beta / sqrt(n); variance: relative standard error sqrt(2 / n) = 1 %.
        # Allow 5 standard errors plus the O(dt) bias of Euler–Maruyama (about 0.5 % at dt = 5e-4).
        mean_err = (x.mean(0) - alpha * x0[0]).abs().max().item()
        assert mean_err < 5 * beta / n**0.5 + 5e-3 * alpha
        var = x.var(0)
        assert ((var / beta**2) - 1).abs().max().item() < 5 * (2 / n) ** 0.5 + 1e-2


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_perturb_matches_closed_form(schedule):
    x0 = torch.randn(7, 3, 4, generator=gen(0))
    t = torch.linspace(0, 1, 7)
    xt, eps = ld.perturb(x0, t, schedule, generator=gen(2))
    expected = schedule.alpha(t)[:, None, None] * x0 + schedule.beta(t)[:, None, None] * eps
    torch.testing.assert_close(xt, expected)
    torch.testing.assert_close(ld.perturb(x0, t, schedule, generator=gen(2))[0], xt, rtol=0, atol=0)
