"""MoLRG: Lemma 1 against Monte Carlo and linear algebra; score against autograd; numerics at the edges."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lowdim as ld
from tests.conftest import gen

SCHEDULES = [ld.VP(), ld.VE()]


def unequal_molrg(d=6):
    """Two subspaces of ranks 1 and 2 with weights 0.3 / 0.7 (not orthogonal to each other)."""
    g = gen(3)
    U1 = torch.linalg.qr(torch.randn(d, 1, generator=g))[0]
    U2 = torch.linalg.qr(torch.randn(d, 2, generator=g))[0]
    return ld.MoLRG([U1, U2], weights=[0.3, 0.7])


def posterior_mean_by_linear_algebra(model, x, t, schedule):
    """Independent route: per-component Gaussian posterior with explicit inverses, weights from MultivariateNormal."""
    alpha, beta = schedule.alpha(torch.tensor(t)), schedule.beta(torch.tensor(t))
    d = model.dim
    means, logps = [], []
    for U, pi in zip(model.bases, model.weights):
        Sigma = U @ U.T
        C = alpha**2 * Sigma + beta**2 * torch.eye(d)
        means.append(alpha * x @ torch.linalg.solve(C, Sigma).T)  # alpha Sigma C^{-1} x
        mvn = torch.distributions.MultivariateNormal(torch.zeros(d), covariance_matrix=C)
        logps.append(torch.log(pi) + mvn.log_prob(x))
    w = torch.softmax(torch.stack(logps, 1), 1)
    return (w[:, :, None] * torch.stack(means, 1)).sum(1), torch.stack(logps, 1).logsumexp(1)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("t", [0.05, 0.3, 0.6])
def test_posterior_mean_matches_linear_algebra(schedule, t):
    model = unequal_molrg()
    x = 2 * torch.randn(16, model.dim, generator=gen(4))
    expected, expected_logp = posterior_mean_by_linear_algebra(model, x, t, schedule)
    torch.testing.assert_close(model.posterior_mean(x, t, schedule), expected, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(model.log_prob(x, t, schedule), expected_logp, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_posterior_mean_matches_monte_carlo(schedule):
    # Self-normalized importance sampling: E[x0 | x_t] = sum_i w_i x0_i / sum_i w_i with x0_i from the prior
    # and w_i = N(x_t; alpha x0_i, beta^2 I). Points x_t are drawn from p_t itself.
    model = unequal_molrg()
    t = float(schedule.t_from_sigma(torch.tensor(0.6)))
    x0_true, _ = model.sample(4, gen(5))
    xt, _ = ld.perturb(x0_true, t, schedule, generator=gen(6))
    prior, _ = model.sample(400_000, gen(7))
    alpha, beta = schedule.alpha(torch.tensor(t)), schedule.beta(torch.tensor(t))
    exact = model.posterior_mean(xt, t, schedule)
    for j in range(xt.shape[0]):
        logw = -((xt[j] - alpha * prior) ** 2).sum(1) / (2 * beta**2)
        w = torch.softmax(logw, 0)
        estimate = w @ prior
        ess = 1 / (w**2).sum()
        assert ess > 1000, "importance sampler too degenerate for a 2 % check"
        assert (estimate - exact[j]).norm() / exact[j].norm() < 0.02


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_score_matches_autograd_of_log_density(schedule):
    model = unequal_molrg()
    x = torch.randn(8, model.dim, generator=gen(8), requires_grad=True)
    t = 0.25
    _, logp = posterior_mean_by_linear_algebra(model, x, t, schedule)
    (grad,) = torch.autograd.grad(logp.sum(), x)
    torch.testing.assert_close(model.score(x.detach(), t, schedule), grad, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_tweedie_both_ways_is_identity(schedule):
    model = ld.random_molrg(10, 3, [1, 2, 3], generator=gen(9))
    D = model.denoiser(schedule)
    s = ld.score_from_denoiser(D, schedule)
    x = torch.randn(5, 10, generator=gen(10))
    t = torch.tensor([0.01, 0.2, 0.5, 0.8, 1.0])
    torch.testing.assert_close(s(x, t), model.score(x, t, schedule), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ld.denoiser_from_score(s, schedule)(x, t), D(x, t), rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t=st.floats(0.0, 1.0),
    scale=st.floats(1e-3, 1e4),
)
def test_weights_lie_in_simplex(seed, t, scale):
    model = ld.random_molrg(12, 3, [2, 3, 4], generator=gen(seed), weights=[0.2, 0.5, 0.3])
    x = scale * torch.randn(6, 12, generator=gen(seed + 1))
    for schedule in SCHEDULES:
        w = model.posterior_weights(x, t, schedule)
        assert bool(torch.isfinite(w).all()) and bool((w >= 0).all())
        torch.testing.assert_close(w.sum(1), torch.ones(6), rtol=0, atol=1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_posterior_mean_jacobian_is_symmetric(schedule):
    # J = (I + beta^2 Hess log p_t) / alpha is symmetric because a Hessian is.
    model = ld.random_molrg(8, 2, [2, 3], generator=gen(11))
    x = torch.randn(1, 8, generator=gen(12))
    J = torch.autograd.functional.jacobian(lambda z: model.posterior_mean(z, 0.3, schedule), x)[0, :, 0, :]
    torch.testing.assert_close(J, J.T, rtol=0, atol=1e-12)
    assert (J - J.T).abs().max() <= 1e-12 and J.abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
@pytest.mark.parametrize("t", [0.0, 1e-4, 1.0])
@pytest.mark.parametrize("norm", [1.0, 1e4])
def test_finite_at_edges(dtype, schedule, t, norm):
    model = ld.random_molrg(16, 2, 3, generator=gen(13), dtype=dtype)
    x = torch.randn(4, 16, generator=gen(14), dtype=dtype)
    x = norm * x / x.norm(dim=1, keepdim=True)
    for out in (
        model.posterior_mean(x, t, schedule),
        model.posterior_weights(x, t, schedule),
        model.score(x, t, schedule),
    ):
        assert out.dtype == dtype and bool(torch.isfinite(out).all())
    if t > 0:
        assert bool(torch.isfinite(model.log_prob(x, t, schedule)).all())


def test_posterior_mean_projects_as_noise_vanishes():
    # At t -> 0 a point on subspace k is returned unchanged (w_k -> 1, U_k U_k^T x = x).
    model = ld.random_molrg(16, 2, 3, generator=gen(15))
    x0, _ = model.sample(32, gen(16))
    torch.testing.assert_close(model.posterior_mean(x0, 1e-4, ld.VP()), x0, rtol=1e-3, atol=1e-3)


def test_sampling_law_and_reproducibility():
    model = ld.random_molrg(10, 2, [1, 3], generator=gen(17), weights=[0.25, 0.75])
    x, labels = model.sample(40_000, gen(18))
    assert x.shape == (40_000, 10) and labels.shape == (40_000,)
    frac = labels.float().mean().item()
    assert abs(frac - 0.75) < 5 * math.sqrt(0.75 * 0.25 / 40_000)
    for k, U in enumerate(model.bases):
        xk = x[labels == k]
        torch.testing.assert_close(xk @ U @ U.T, xk)  # on the subspace
        cov = U.T @ xk.T @ xk @ U / len(xk)
        torch.testing.assert_close(cov, torch.eye(U.shape[1]), rtol=0, atol=0.05)
    x2, labels2 = model.sample(40_000, gen(18))
    assert torch.equal(x, x2) and torch.equal(labels, labels2)


def test_random_molrg_subspaces_are_orthogonal():
    model = ld.random_molrg(20, 4, 5, generator=gen(19))
    U = torch.cat(model.bases, 1)
    torch.testing.assert_close(U.T @ U, torch.eye(20), rtol=0, atol=1e-12)


def test_images_are_flattened():
    model = ld.random_molrg(64, 2, 4, generator=gen(20))
    x = torch.randn(3, 1, 8, 8, generator=gen(21))
    out = model.posterior_mean(x, 0.4, ld.VP())
    assert out.shape == x.shape
    torch.testing.assert_close(out.reshape(3, 64), model.posterior_mean(x.reshape(3, 64), 0.4, ld.VP()))
