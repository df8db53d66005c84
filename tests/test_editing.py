"""LOCO Edit's building blocks: inversion, masked Jacobian SVD, null-space projection and the edit itself."""

import math

import pytest
import torch

import lowdim as ld

from .conftest import gen


def _molrg():
    return ld.random_molrg(16, 2, 2, generator=gen(0))


@pytest.mark.parametrize("t", [0.3, 0.7])
def test_inversion_round_trip_converges_at_first_order(t):
    # DDIM inversion evaluates the denoiser at the start of each step: the round trip x0 -> x_t -> x0 is exact only
    # as steps grow, with an error O(1/steps) (halving when the steps double) for the exact MoLRG denoiser
    model, vp = _molrg(), ld.VP()
    D = model.denoiser(vp)
    x0 = model.sample(16, generator=gen(1))[0]
    errors = []
    for steps in (40, 80, 160):
        back = ld.sample(D, ld.invert(D, x0, vp, t, steps), vp, steps=steps, method="ddim", t_start=t)
        errors.append(float((back - x0).norm() / x0.norm()))
    assert errors[-1] < 0.03
    for coarse, fine in zip(errors, errors[1:]):
        assert 0.4 < fine / coarse < 0.6


def test_inversion_on_a_given_grid_runs_that_grid_backwards():
    # invert(t_grid=) is the route of a study that samples and inverts on one shared grid: the default grid passed
    # explicitly gives the same state, and sampling down a grid then inverting up the same grid returns to x_t
    model, vp = _molrg(), ld.VP()
    D = model.denoiser(vp)
    x0 = model.sample(8, generator=gen(2))[0]
    grid = ld.time_grid(vp, 30, t_max=0.5)
    torch.testing.assert_close(ld.invert(D, x0, vp, 0.5, t_grid=grid), ld.invert(D, x0, vp, 0.5, 30))
    coarse = torch.tensor([0.5, 0.3, 0.1, 0.0], dtype=torch.float64)
    assert not torch.allclose(ld.invert(D, x0, vp, 0.5, t_grid=coarse), ld.invert(D, x0, vp, 0.5, 30))
    with pytest.raises(ValueError, match="^t_grid must run from t"):
        ld.invert(D, x0, vp, 0.4, t_grid=grid)
    with pytest.raises(ValueError, match="^t_grid must be a strictly decreasing"):
        ld.invert(D, x0, vp, 0.5, t_grid=grid.flip(0))


def _mlp(d=12):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ld.MLPDenoiser(d, ld.VP(), width=32, depth=2).double()


def test_masked_svd_matches_the_svd_of_the_masked_full_jacobian():
    f, t = _mlp(), 0.4
    x = torch.randn(3, 12, generator=gen(3))
    mask = torch.zeros(12)
    mask[:5] = 1
    J = ld.jacobian(f, x, t) * mask[None, :, None]
    U, S, Vh = torch.linalg.svd(J)
    k = 4
    svd = ld.jacobian_svd(f, x, t, k, tol=1e-10, max_iters=200, generator=gen(4), mask=mask)
    torch.testing.assert_close(svd.S, S[:, :k], rtol=1e-8, atol=1e-10)
    assert ld.subspace_distance(svd.V, Vh[:, :k].transpose(1, 2)).max() < 1e-6
    # the closed-form route (MoLRG) masks the same rows
    model = _molrg()
    D = model.denoiser(ld.VP())
    z = torch.randn(2, 16, generator=gen(5))
    m16 = (torch.arange(16) % 3 == 0).double()
    J = ld.jacobian(D, z, 0.3) * m16[None, :, None]
    closed = ld.jacobian_svd(D, z, 0.3, 3, tol=1e-10, generator=gen(6), mask=m16)
    torch.testing.assert_close(closed.S, torch.linalg.svdvals(J)[:, :3], rtol=1e-8, atol=1e-10)


def test_projection_keeps_the_outside_still_to_first_order():
    # ||J_out v_p|| <= sigma_{r'+1}(J_out) for v_p orthogonal to the top r' right singular vectors of J_out
    f, t = _mlp(), 0.4
    x = torch.randn(2, 12, generator=gen(7))
    inside = torch.zeros(12)
    inside[:6] = 1
    dirs = ld.edit_directions(f, x, t, inside, rank=2, null_rank=3, tol=1e-10, generator=gen(8))
    J_out = ld.jacobian(f, x, t) * (1 - inside)[None, :, None]
    sigma = torch.linalg.svdvals(J_out)
    moved = torch.linalg.vector_norm(J_out @ dirs.directions, dim=1)  # (B, r)
    assert bool((moved <= sigma[:, 3:4] * (1 + 1e-6)).all())
    raw_moved = torch.linalg.vector_norm(J_out @ dirs.raw, dim=1)
    assert bool((moved < raw_moved).all())
    torch.testing.assert_close(torch.linalg.vector_norm(dirs.directions, dim=1), torch.ones(2, 2))


def test_edit_is_exactly_linear_for_the_molrg_denoiser_at_low_noise():
    # on component 0's subspace at low noise the posterior weights are saturated, so D = c U0 U0^T x with
    # c = alpha / (alpha^2 + beta^2): the top singular value is c, v lies in span(U0), and D(x + lam v) = D(x) + lam c v
    model, vp, t = _molrg(), ld.VP(), 0.05
    D = model.denoiser(vp)
    U0 = model.bases[0]
    a, b = vp.alpha(torch.tensor(t)), vp.beta(torch.tensor(t))
    c = float(a / (a**2 + b**2))
    x = a * (U0 @ torch.tensor([[1.5], [-0.7]])).T
    dirs = ld.edit_directions(D, x, t, torch.ones(16), rank=2, null_rank=0, tol=1e-12, generator=gen(9))
    torch.testing.assert_close(dirs.singular_values, torch.full((1, 2), c), rtol=1e-9, atol=0)
    assert ld.subspace_distance(dirs.directions[0], U0) < 1e-8
    # every unit vector of span(U0) is a right singular vector (sigma_1 = sigma_2 = c); take the one along x, so that
    # the steps below stay far from the other subspace and the weights stay saturated (w_0 > 1 - 1e-8)
    v = x / x.norm()
    for lam in (-0.5, 0.5, 3.0):
        torch.testing.assert_close(D(ld.step_along(x, v[:, :, None], lam), t), D(x, t) + lam * c * v, rtol=0, atol=1e-7)


def test_loco_edit_reconstructs_at_zero_and_transfers_and_composes():
    model, vp, t = _molrg(), ld.VP(), 0.3
    D = model.denoiser(vp)
    x0 = model.sample(3, generator=gen(10))[0]
    x_t = ld.invert(D, x0, vp, t, 30)
    recon = ld.loco_edit(D, x0, vp, t, torch.zeros(16, 1), 0.0, steps=30, x_t=x_t)
    torch.testing.assert_close(recon, ld.sample(D, x_t, vp, steps=30, method="ddim", t_start=t))
    V = torch.linalg.qr(torch.randn(16, 2, generator=gen(11)))[0]
    one = ld.loco_edit(D, x0, vp, t, V, torch.tensor([1.0, -2.0]), steps=30, x_t=x_t)  # shared (d, j): a transfer
    each = ld.loco_edit(D, x0, vp, t, V.expand(3, 16, 2), torch.tensor([[1.0, -2.0]] * 3), steps=30, x_t=x_t)
    torch.testing.assert_close(one, each)
    assert not torch.allclose(one, recon)


def test_editing_rejects_bad_masks_and_steps():
    f, x = _mlp(), torch.randn(2, 12, generator=gen(12))
    with pytest.raises(ValueError, match="^mask must broadcast"):
        ld.edit_directions(f, x, 0.5, torch.ones(5))
    with pytest.raises(ValueError, match="^mask selects no entry"):
        ld.jacobian_svd(f, x, 0.5, 2, mask=torch.zeros(12))
    with pytest.raises(TypeError, match="^mask"):
        ld.jacobian_svd(f, x, 0.5, 2, mask=[1] * 12)
    with pytest.raises(TypeError, match="^lambdas"):
        ld.step_along(x, torch.ones(12, 1) / math.sqrt(12), "1")
    with pytest.raises(ValueError, match="^lambdas"):
        ld.step_along(x, torch.ones(12, 2), torch.ones(3))
    with pytest.raises(ValueError, match="^directions"):
        ld.step_along(x, torch.ones(11, 1), 1.0)
    with pytest.raises(ValueError, match="^t must"):
        ld.invert(f, x, ld.VP(), 1.5)
    with pytest.raises(ValueError, match="^null_rank"):
        ld.edit_directions(f, x, 0.5, torch.ones(12), null_rank=-1)
