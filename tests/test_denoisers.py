"""Closed-form denoisers against independent routes; the trained MLP; the DSM loss identity."""

import pytest
import torch

import lowdim as ld
from tests.conftest import gen


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_gaussian_denoiser_equals_molrg_with_one_component(schedule):
    model = ld.random_molrg(12, 1, 3, generator=gen(0))
    U = model.bases[0]
    gauss = ld.GaussianDenoiser(torch.zeros(12), U @ U.T)
    x = torch.randn(9, 12, generator=gen(1))
    t = torch.linspace(0.0, 1.0, 9)
    torch.testing.assert_close(
        gauss.posterior_mean(x, t, schedule), model.posterior_mean(x, t, schedule), rtol=1e-9, atol=1e-9
    )


def test_gaussian_fit_matches_moments_and_solve():
    g = gen(2)
    A = torch.randn(5, 5, generator=g)
    X = torch.randn(5000, 5, generator=g) @ A.T + torch.arange(5.0)
    den = ld.GaussianDenoiser.fit(X)
    torch.testing.assert_close(den.mean_, X.mean(0))
    torch.testing.assert_close(den.covariance_, torch.cov(X.T, correction=0))
    schedule, t = ld.VP(), 0.3
    a, b = schedule.alpha(torch.tensor(t)), schedule.beta(torch.tensor(t))
    x = torch.randn(4, 5, generator=g)
    S, mu = den.covariance_, den.mean_
    expected = mu + (x - a * mu) @ torch.linalg.solve(a**2 * S + b**2 * torch.eye(5), a * S).T
    torch.testing.assert_close(den.posterior_mean(x, t, schedule), expected, rtol=1e-9, atol=1e-9)


def test_empirical_denoiser_matches_brute_force_softmax():
    train = torch.randn(30, 1, 2, 3, generator=gen(3))
    den = ld.EmpiricalDenoiser(train)
    schedule, t = ld.VE(), 0.4
    a, b = schedule.alpha(torch.tensor(t)), schedule.beta(torch.tensor(t))
    x = 3 * torch.randn(5, 1, 2, 3, generator=gen(4))
    flat, X = x.reshape(5, -1), train.reshape(30, -1)
    w = torch.softmax(-(torch.cdist(flat, a * X) ** 2) / (2 * b**2), dim=1)
    torch.testing.assert_close(den.posterior_mean(x, t, schedule), (w @ X).reshape(x.shape), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(den.posterior_weights(x, t, schedule), w, rtol=1e-9, atol=1e-12)
    # Memorization: at t -> 0 the denoiser snaps a slightly noisy training point back onto it.
    near = train[:5] + 1e-3 * torch.randn(5, 1, 2, 3, generator=gen(5))
    torch.testing.assert_close(den.posterior_mean(near, 1e-4, schedule), train[:5], rtol=0, atol=1e-8)


def test_empirical_denoiser_finite_at_large_norm_and_t_zero():
    den = ld.EmpiricalDenoiser(torch.randn(20, 4, generator=gen(6)))
    x = 1e4 * torch.randn(3, 4, generator=gen(7))
    for t in (0.0, 1e-4, 1.0):
        for schedule in (ld.VP(), ld.VE()):
            assert bool(torch.isfinite(den.posterior_mean(x, t, schedule)).all())


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_eps_weighted_loss_is_the_tutorial_loss(schedule):
    # E ||eps + beta_t s_theta(x_t, t)||^2 with s_theta = (alpha D - x)/beta^2 equals the 1/sigma^2-weighted x0 loss.
    torch.manual_seed(0)
    model = ld.MLPDenoiser(6, schedule, width=16, depth=2)
    x0 = torch.randn(64, 6, generator=gen(8))
    ours = ld.dsm_loss(model, x0, schedule, generator=gen(9), weighting="eps")
    g = gen(9)
    t = 1e-3 + (1 - 1e-3) * torch.rand(64, generator=g)
    eps = torch.randn(64, 6, generator=g)
    a, b = schedule.alpha(t)[:, None], schedule.beta(t)[:, None]
    xt = a * x0 + b * eps
    s = (a * model(xt, t) - xt) / b**2
    tutorial = ((eps + b * s) ** 2).sum(1).mean()
    torch.testing.assert_close(ours, tutorial, rtol=1e-8, atol=1e-10)


def test_training_learns_the_gaussian_denoiser():
    # A small MLP trained on a rank-2 Gaussian approaches the exact posterior mean (relative MSE < 10 %).
    schedule = ld.VP()
    truth = ld.random_molrg(4, 1, 2, generator=gen(10))
    data, _ = truth.sample(4096, gen(11))
    torch.manual_seed(0)
    model = ld.MLPDenoiser(4, schedule, width=64, depth=2)
    xt, _ = ld.perturb(data[:512], 0.5, schedule, generator=gen(13))
    exact = truth.posterior_mean(xt, 0.5, schedule)

    def relative_error():
        with torch.no_grad():
            return (((model(xt, 0.5) - exact) ** 2).sum() / (exact**2).sum()).item()

    before = relative_error()
    ld.train_denoiser(model, data, schedule, steps=1500, batch_size=256, lr=3e-3, generator=gen(12), progress=False)
    after = relative_error()
    assert after < 0.1 and after < 0.25 * before


def test_training_is_reproducible():
    schedule = ld.VE()
    data = torch.randn(64, 3, generator=gen(14))

    def run():
        torch.manual_seed(1)
        model = ld.MLPDenoiser(3, schedule, width=8, depth=1)
        ld.train_denoiser(model, data, schedule, steps=20, batch_size=16, generator=gen(15), progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(run(), run())


def test_digits_are_scaled_images():
    images, labels = ld.digits()
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min().item() == -1.0 and images.max().item() == 1.0
    assert set(labels.tolist()) == set(range(10))


def test_denoiser_agreement_of_two_isotropic_gaussians_matches_the_closed_form():
    # D_s(x, t) = g_s(t) x for N(0, s^2 I): outputs are parallel (cosine 1) and the relative MSE is
    # (g_1 - g_2)^2 / g_2^2 exactly, whatever the inputs
    schedule, d = ld.VP(), 6
    dens = [ld.GaussianDenoiser(torch.zeros(d), s**2 * torch.eye(d)).denoiser(schedule) for s in (0.5, 2.0)]
    x0 = torch.randn(50, d, generator=gen(0))
    times = torch.tensor([0.1, 0.5, 0.9])
    cos, rel = ld.denoiser_agreement(dens[0], dens[1], x0, times, schedule, generator=gen(1))
    a, b2 = schedule.alpha(times), schedule.beta(times) ** 2
    g1, g2 = (a * s**2 / (a**2 * s**2 + b2) for s in (0.5, 2.0))
    torch.testing.assert_close(cos, torch.ones(3), atol=1e-12, rtol=0)
    torch.testing.assert_close(rel, (g1 - g2) ** 2 / g2**2, atol=1e-12, rtol=1e-10)
    same_cos, same_rel = ld.denoiser_agreement(dens[0], dens[0], x0, times, schedule, generator=gen(1))
    assert bool((same_rel == 0).all()) and torch.allclose(same_cos, torch.ones(3))
    with pytest.raises(TypeError, match="^D2"):
        ld.denoiser_agreement(dens[0], None, x0, times, schedule)
