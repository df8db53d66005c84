"""The Gaussian-mixture denoiser (general Bayes route) against Lemma 1, the single Gaussian, autograd and data."""

import pytest
import torch

import lowdim as ld
from tests.conftest import gen


@pytest.mark.parametrize("schedule", [ld.VP(), ld.VE()], ids=repr)
def test_lemma_1_is_the_gaussian_mixture_posterior_mean(schedule):
    # Lemma 1's closed form (projections and a softmax over phi_t ||U_k^T x||^2) against the generic formula
    # (per-component Gaussian posterior means mixed by likelihoods computed in an eigenbasis).
    molrg = ld.random_molrg(10, 3, [2, 3, 1], generator=gen(0), weights=[0.5, 0.3, 0.2])
    covs = torch.stack([U @ U.T for U in molrg.bases])
    mixture = ld.GaussianMixtureDenoiser(torch.zeros(3, 10), covs, molrg.weights)
    x = 1.5 * torch.randn(16, 10, generator=gen(1))
    t = torch.linspace(0.02, 1.0, 16)
    torch.testing.assert_close(
        mixture.posterior_mean(x, t, schedule), molrg.posterior_mean(x, t, schedule), rtol=1e-9, atol=1e-10
    )
    torch.testing.assert_close(
        mixture.posterior_weights(x, t, schedule), molrg.posterior_weights(x, t, schedule), rtol=1e-9, atol=1e-12
    )
    torch.testing.assert_close(mixture.log_prob(x, t, schedule), molrg.log_prob(x, t, schedule), rtol=1e-10, atol=1e-9)


def test_one_component_is_the_gaussian_denoiser():
    A = torch.randn(6, 6, generator=gen(2))
    cov, mean = A @ A.T, torch.randn(6, generator=gen(3))
    mixture = ld.GaussianMixtureDenoiser(mean[None], cov[None])
    x, t = torch.randn(5, 6, generator=gen(4)), torch.linspace(0.0, 1.0, 5)
    torch.testing.assert_close(
        mixture.posterior_mean(x, t, ld.VP()), ld.GaussianDenoiser(mean, cov).posterior_mean(x, t, ld.VP())
    )


def test_score_is_the_gradient_of_the_log_density():
    g = gen(5)
    means = torch.randn(2, 5, generator=g)
    B = torch.randn(2, 5, 2, generator=g)
    mixture = ld.GaussianMixtureDenoiser(means, B @ B.transpose(1, 2) + 0.1 * torch.eye(5), torch.tensor([0.7, 0.3]))
    x = torch.randn(8, 5, generator=g).requires_grad_()
    t = torch.full((8,), 0.4)
    (grad,) = torch.autograd.grad(mixture.log_prob(x, t, ld.VE()).sum(), x)
    torch.testing.assert_close(mixture.score(x.detach(), t, ld.VE()), grad, rtol=1e-8, atol=1e-10)


def test_finite_at_the_edges_of_time_and_norm():
    molrg = ld.random_molrg(8, 2, 2, generator=gen(6))
    mixture = ld.GaussianMixtureDenoiser(torch.zeros(2, 8), torch.stack([U @ U.T for U in molrg.bases]))
    x = 1e6 * torch.randn(4, 8, generator=gen(7))
    for t in (0.0, 1e-9, 1.0):
        assert torch.isfinite(mixture.posterior_mean(x, t, ld.VP())).all()
    # As t -> 0 the denoiser projects onto the most likely subspace.
    x0 = molrg.sample(4, generator=gen(8))[0]
    torch.testing.assert_close(mixture.posterior_mean(x0, 1e-7, ld.VP()), x0, rtol=1e-5, atol=1e-5)


def test_fit_molrg_recovers_a_molrg_and_its_denoiser():
    truth = ld.random_molrg(20, 2, 3, generator=gen(9))
    X, labels = truth.sample(4000, generator=gen(10))
    for fitted in (ld.fit_molrg_denoiser(X, 3, labels=labels), ld.fit_molrg_denoiser(X, 3, K=2, generator=gen(11))):
        x = ld.perturb(X[:50], 0.3, ld.VP(), generator=gen(12))[0]
        # The sample second moments of unit-variance coefficients are 1 +- O(1/sqrt(2000)).
        torch.testing.assert_close(
            fitted.posterior_mean(x, 0.3, ld.VP()), truth.posterior_mean(x, 0.3, ld.VP()), rtol=0, atol=0.15
        )
        assert fitted.n_components == 2
        assert torch.allclose(fitted.weights_, torch.tensor([0.5, 0.5]), atol=0.05)


def test_fit_molrg_options_and_validation():
    X = torch.randn(200, 6, generator=gen(13)) + 3.0
    labels = torch.arange(200) % 2
    centred = ld.fit_molrg_denoiser(X, 2, labels=labels, center=True, floor=True)
    torch.testing.assert_close(centred.means_[0], X[labels == 0].mean(0))
    # floor: full rank, trace preserved (top-r variances plus the mean residual variance elsewhere).
    C = torch.cov(X[labels == 0].T, correction=0)
    torch.testing.assert_close(torch.trace(centred.covariances_[0]), torch.trace(C))
    assert torch.linalg.eigvalsh(centred.covariances_[0]).min() > 0
    assert torch.linalg.matrix_rank(ld.fit_molrg_denoiser(X, 2, labels=labels).covariances_[0]) == 2
    with pytest.raises(ValueError, match="^K must be given"):
        ld.fit_molrg_denoiser(X, 2)
    with pytest.raises(TypeError, match="^labels must be an integer"):
        ld.fit_molrg_denoiser(X, 2, labels=labels.double())
    with pytest.raises(ValueError, match="^r must be <="):
        ld.fit_molrg_denoiser(X, 7, labels=labels)
    with pytest.raises(ValueError, match="^covariances must have shape"):
        ld.GaussianMixtureDenoiser(torch.zeros(2, 3), torch.eye(3)[None])
    with pytest.raises(ValueError, match="^covariances must be positive semi-definite"):
        ld.GaussianMixtureDenoiser(torch.zeros(1, 2), -torch.eye(2)[None])
    with pytest.raises(ValueError, match="^weights must be positive"):
        ld.GaussianMixtureDenoiser(torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2), torch.tensor([0.9, 0.2]))
