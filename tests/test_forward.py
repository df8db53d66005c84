"""Forward process: the law of perturb's x_t and eps, and Euler–Maruyama marginals, against closed forms."""

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


# Forward marginals by hand. VP(0.1, 20): B(t) = int_0^t b = 0.1 t + 9.95 t^2, alpha = exp(-B/2), beta = sqrt(1 - e^-B):
# B(0.3) = 0.9255, B(0.5) = 2.5375. VE(0.01, 50): alpha = 1, beta = 0.01 sqrt(5000^(2t) - 1).
MARGINALS = [
    pytest.param(ld.VP(), [(0.3, 0.629550, 0.776960), (0.5, 0.281183, 0.959654)], id="VP"),
    pytest.param(ld.VE(), [(0.25, 1.0, 0.0834929), (0.5, 1.0, 0.707036)], id="VE"),
]


@pytest.mark.parametrize("schedule, marginals", MARGINALS)
def test_perturb_draws_from_the_forward_marginal(schedule, marginals):
    # one fixed x0 repeated n times at each of two times (per-item t): x_t ~ N(alpha_t x0, beta_t^2 I)
    n = 20_000
    x0 = torch.tensor([1.5, -0.5, 3.0])
    t = torch.cat([torch.full((n,), t_) for t_, _, _ in marginals])
    xt, _ = ld.perturb(x0.expand(len(t), 3), t, schedule, generator=gen(2))
    for k, (_, alpha, beta) in enumerate(marginals):
        x = xt[k * n : (k + 1) * n]
        # mean: standard error beta / sqrt(n); std: relative standard error 1 / sqrt(2 n) = 0.5 %; 5 of each
        # (the hand values above carry 6 digits, far below these tolerances)
        assert (x.mean(0) - alpha * x0).abs().max().item() < 5 * beta / n**0.5
        assert (x.std(0) / beta - 1).abs().max().item() < 5 / (2 * n) ** 0.5
        corr = torch.corrcoef(x.T)  # independent coordinates: off-diagonal correlations ~ N(0, 1 / n)
        assert (corr - torch.eye(3)).abs().max().item() < 5 / n**0.5


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_perturb_noise_is_standard_normal_and_independent_of_x0(schedule):
    n = 40_000
    x0 = 2 * torch.randn(n, 3, generator=gen(0))
    t = torch.rand(n, generator=gen(1))
    xt, eps = ld.perturb(x0, t, schedule, generator=gen(2))
    z = eps.flatten().sort().values
    # Kolmogorov-Smirnov distance to the normal CDF; 1.63 / sqrt(N) is its 1 % critical value
    cdf = torch.special.ndtr(z)
    grid = torch.arange(1, len(z) + 1) / len(z)
    ks = torch.maximum(grid - cdf, cdf - (grid - 1 / len(z))).max().item()
    assert ks < 1.63 / len(z) ** 0.5
    # uncorrelated with x0 (each correlation ~ N(0, 1 / n)), and not a function of it: another x0, same draw
    corr = torch.corrcoef(torch.cat([x0, eps], 1).T)[:3, 3:]
    assert corr.abs().max().item() < 5 / n**0.5
    assert torch.equal(ld.perturb(-x0, t, schedule, generator=gen(2))[1], eps)
    # and x_t is built from the eps it returns
    alpha, beta = schedule.alpha(t)[:, None], schedule.beta(t)[:, None]
    torch.testing.assert_close(xt, alpha * x0 + beta * eps)
