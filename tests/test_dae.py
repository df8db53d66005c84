"""The MoLRG-parameterized DAE: it is the Lemma 1 denoiser at the true bases, and training it (K = 1) is PCA."""

import pytest
import torch

import lowdim as ld
from lowdim.dae import dae_loss, noise_basis, noise_rank, projected_loss
from tests.conftest import gen


def test_dae_at_the_true_bases_is_the_posterior_mean():
    truth = ld.random_molrg(12, 2, 3, generator=gen(0))
    dae = ld.LowRankDAE(12, 2, 3, schedule=ld.VE())
    with torch.no_grad():
        dae.U.copy_(torch.stack(truth.bases))
    x = 2 * torch.randn(7, 12, generator=gen(1))
    t = torch.linspace(0.05, 1.0, 7)
    torch.testing.assert_close(dae(x, t), truth.posterior_mean(x, t, ld.VE()), rtol=1e-10, atol=1e-12)


def test_stacked_models_are_independent():
    stacked = ld.LowRankDAE(10, 2, 2, n_models=3, generator=gen(2))
    data = torch.randn(3, 6, 10, generator=gen(3))
    loss = dae_loss(stacked, data, generator=gen(4))
    loss.backward()
    grad = stacked.U.grad.clone()
    # The gradient of model 1 does not depend on the data of models 0 and 2.
    stacked.U.grad = None
    data2 = data.clone()
    data2[0] += 1.0
    data2[2] *= 3.0
    dae_loss(stacked, data2, generator=gen(4)).backward()
    torch.testing.assert_close(stacked.U.grad[1], grad[1], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(stacked.U.grad[0], grad[0])


@pytest.mark.parametrize("n, succeeds", [(10, True), (2, False)])
def test_training_the_dae_with_k_1_is_pca(n, succeeds):
    # Theorem (K = 1): the denoising loss of x_U is minimized by the top-r principal subspace of the data; with
    # n < r points the remaining directions are not identified, as for PCA.
    d, r = 24, 3
    truth = ld.random_molrg(d, 1, r, generator=gen(5))
    X = (truth.bases[0] @ torch.randn(r, n, generator=gen(6))).T
    dae = ld.LowRankDAE(d, 1, r, generator=gen(7))
    ld.train_dae(dae, X, steps=300, lr=0.05, draws=8, generator=gen(8), progress=False)
    learned = dae.bases[0]
    assert torch.allclose(learned.T @ learned, torch.eye(r), atol=1e-10)  # kept orthonormal
    error = ld.subspace_recovery_error([learned], truth.bases)
    if succeeds:
        assert error < 0.05
        assert ld.subspace_recovery_error([learned], [ld.pca(X, r)]) < 0.05
    else:
        assert error > 0.3


def _direct_losses(model, x0, t, eps):
    """The denoising loss computed the plain way: x_t in R^d, the model's forward pass, squared error."""
    m, N, D, d = eps.shape
    alpha, beta = model.schedule.alpha(t)[..., None], model.schedule.beta(t)[..., None]
    xt = alpha * x0[:, :, None] + beta * eps
    pred = model(xt.reshape(m, N * D, d), t.reshape(m, N * D)).reshape(m, N, D, d)
    return (pred - x0[:, :, None]).pow(2).sum(-1).mean((1, 2))


def _setup(seed):
    g = gen(seed)
    model = ld.LowRankDAE(12, 2, 2, n_models=3, generator=g)
    x0 = torch.randn(3, 5, 12, generator=g)
    t = 0.01 + 0.5 * torch.rand(3, 5, 4, generator=g)
    return model, x0, t, g


def test_projected_loss_equals_the_direct_loss_and_gradient_for_in_span_noise():
    model, x0, t, g = _setup(20)
    z = torch.randn(3, 5, 4, noise_rank(model), generator=g)
    eps = torch.einsum("mds,mnjs->mnjd", noise_basis(model), z)
    fast = projected_loss(model, x0, t, z)
    (g_fast,) = torch.autograd.grad(fast.sum(), model.U)
    direct = _direct_losses(model, x0, t, eps)
    (g_direct,) = torch.autograd.grad(direct.sum(), model.U)
    torch.testing.assert_close(fast, direct, rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(g_fast, g_direct, rtol=1e-10, atol=1e-12)


def test_dropping_the_out_of_span_noise_keeps_the_gradient_unbiased():
    # Rao-Blackwellization: average the direct gradient over many independent out-of-span components eps_perp
    # (in-span part fixed); it converges to the projected gradient, and the loss value never changes.
    model, x0, t, g = _setup(21)
    Q = noise_basis(model)
    z = torch.randn(3, 5, 4, noise_rank(model), generator=g)
    eps_par = torch.einsum("mds,mnjs->mnjd", Q, z)
    (g_fast,) = torch.autograd.grad(projected_loss(model, x0, t, z).sum(), model.U)
    grads, n = [], 400
    for _ in range(n):
        e = torch.randn(eps_par.shape, generator=g)
        e_perp = e - torch.einsum("mds,mnjs->mnjd", Q, torch.einsum("mds,mnjd->mnjs", Q, e))
        loss = _direct_losses(model, x0, t, eps_par + e_perp)
        torch.testing.assert_close(loss, projected_loss(model, x0, t, z).detach(), rtol=1e-10, atol=1e-12)
        grads.append(torch.autograd.grad(loss.sum(), model.U)[0])
    grads = torch.stack(grads)
    se = grads.std(0) / n**0.5
    assert ((grads.mean(0) - g_fast).abs() <= 4.5 * se + 1e-12).all()
    assert grads.std(0).max() > 0.05 * g_fast.abs().max()  # the dropped term is real noise, not zero


def test_the_generic_trainer_keeps_the_bases_orthonormal_and_finds_pca():
    # train_denoiser (the DSM loss over all noise levels) on a LowRankDAE: the projection after each step keeps
    # U orthonormal, and the minimizer is still the principal subspace (the theorem holds at every noise level).
    d, r = 16, 2
    truth = ld.random_molrg(d, 1, r, generator=gen(30))
    X = truth.sample(64, generator=gen(31))[0]
    dae = ld.LowRankDAE(d, 1, r, generator=gen(32))
    ld.train_denoiser(dae, X, dae.schedule, steps=400, batch_size=64, lr=0.02, generator=gen(33), progress=False,
                      sigma_data=0.5)  # fmt: skip
    U = dae.bases[0]
    assert torch.allclose(U.T @ U, torch.eye(r), atol=1e-10)
    assert ld.subspace_recovery_error([U], truth.bases) < 0.1
