"""The Jacobian kernel: full Jacobians, matrix-free top-k SVD, effective rank, local linearity."""

import pytest
import torch

import lowdim as ld
from lowdim.jacobian import effective_rank, jacobian, jacobian_svd, linearity, subspace_sin
from lowdim.models import UNetDenoiser

from .conftest import gen


def _reference(f, x, t):
    # torch.autograd.functional.jacobian item by item: one reverse pass per output row
    out = []
    for b in range(len(x)):
        J = torch.autograd.functional.jacobian(lambda z, b=b: f(z[None], t[b : b + 1])[0], x[b])
        out.append(J.reshape(x[b].numel(), x[b].numel()))
    return torch.stack(out)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda s: ld.MLPDenoiser(12, s, width=16, depth=2), (12,)),
        (lambda s: UNetDenoiser((2, 4, 4), s, channels=(4, 8)), (2, 4, 4)),
    ],
    ids=["mlp", "conv"],
)
@pytest.mark.parametrize("chunk", [None, 5])
def test_jacobian_matches_autograd_functional(make, shape, chunk):
    torch.manual_seed(0)
    f = make(ld.VP())
    x = torch.randn(3, *shape, generator=gen(1))
    t = torch.tensor([0.2, 0.5, 0.9])
    J = jacobian(f, x, t, chunk_size=chunk)
    assert J.shape == (3, x[0].numel(), x[0].numel())
    torch.testing.assert_close(J, _reference(f, x, t), atol=1e-10, rtol=0)


def _slow_decay_matrix(d=40, seed=0, decay=0.9):
    # singular values 1, decay, decay^2, ... : slow geometric decay
    q1 = torch.linalg.qr(torch.randn(d, d, generator=gen(seed))).Q
    q2 = torch.linalg.qr(torch.randn(d, d, generator=gen(seed + 1))).Q
    return q1 @ torch.diag(decay ** torch.arange(d, dtype=torch.float64)) @ q2.T


@pytest.mark.parametrize("block", [None, 8])
def test_jacobian_svd_matches_a_full_svd(block):
    # sigma_{i+1}/sigma_i = 0.95 everywhere: plain subspace iteration would need ~400 iterations for 1e-9
    A = _slow_decay_matrix(d=300, decay=0.95)
    f = lambda x: x @ A.T  # noqa: E731  J = A for every item
    x = torch.randn(2, 300, generator=gen(3))
    U, S, V, passes, iters = jacobian_svd(f, x, None, k=4, tol=1e-7, max_iters=2000, generator=gen(4), block=block)
    Uf, Sf, Vh = torch.linalg.svd(A)
    torch.testing.assert_close(S, Sf[:4].expand(2, 4), rtol=1e-4, atol=0)
    for b in range(2):
        assert ld.subspace_distance(V[b], Vh[:4].T) < 1e-3
        assert ld.subspace_distance(U[b], Uf[:, :4]) < 1e-3
    width = block or 4
    assert iters * width < 300  # converged without filling the space
    # graph, graph of J^T u, then per iteration one J Q_i and (but the last) one J^T (J Q_i), `width` copies each
    assert passes == 2 * width + width * (2 * iters - 1)


class _Cube(torch.autograd.Function):
    """z ** 3 without a double-backward formula (as some fused kernels): JVPs must fall back to forward mode."""

    @staticmethod
    def forward(z):
        return z**3

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.z = inputs[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return 3 * z**2 * g

    @staticmethod
    def jvp(ctx, dz):
        return 3 * ctx.z**2 * dz


def test_jacobian_svd_restarts_and_falls_back_to_forward_mode():
    A = _slow_decay_matrix(d=60, decay=0.97)
    f = lambda x: _Cube.apply(x) @ A.T  # noqa: E731
    x = 1 + torch.rand(1, 60, generator=gen(3), dtype=torch.float64)
    with pytest.raises(RuntimeError):  # message varies: "not used in the graph" or the once_differentiable error
        jacobian_svd.__globals__["BatchedJacobian"](f, x, None, 1)._jvp_double_backward(torch.ones(1, 60, 1))
    # block 1: the space restarts at 20 columns, long before it converged
    U, S, V, _, iters = jacobian_svd(f, x, None, k=1, tol=1e-9, max_iters=500, generator=gen(4))
    assert iters > 20
    Sf = torch.linalg.svdvals(jacobian(f, x))
    torch.testing.assert_close(S[:, 0], Sf[:, 0], rtol=1e-6, atol=0)


def test_subspace_sin_ignores_signs_and_rotations():
    V = torch.linalg.qr(torch.randn(10, 3, generator=gen(0))).Q
    R = torch.linalg.qr(torch.randn(3, 3, generator=gen(1))).Q
    assert subspace_sin(V, -V @ R) < 1e-7
    W = torch.linalg.qr(torch.randn(10, 3, generator=gen(2))).Q
    assert subspace_sin(V, W) > 0.1
    # small angles resolve in float32 (sqrt(1 - cos^2) is stuck at multiples of ~3e-4 there)
    theta = 1e-5
    V32 = torch.eye(10, 3, dtype=torch.float32)
    W32 = V32.clone()
    W32[0, 0], W32[5, 0] = torch.cos(torch.tensor(theta)), torch.sin(torch.tensor(theta))
    assert abs(float(subspace_sin(V32, W32)) - theta) < 1e-7


def test_effective_rank_counts_energy():
    S = torch.tensor([[3.0, 2.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    # energies 9, 13, 14 of 14: 0.99^2 * 14 = 13.72 -> 3; uniform: 0.9801 * 4 = 3.92 -> 4
    assert effective_rank(S).tolist() == [3, 4]
    assert effective_rank(S, energy=0.9).tolist() == [2, 4]  # 0.81 * 14 = 11.3 -> 9 < 11.3 <= 13 -> 2
    # with a larger total than the top values hold, the rank is "more than k"
    assert effective_rank(S[:1, :2], total=torch.tensor([14.0])).tolist() == [3]
    with pytest.raises(ValueError, match="^energy"):
        effective_rank(S, energy=0)


def test_linearity_is_exact_for_a_linear_map():
    A = torch.randn(6, 6, generator=gen(0))
    x, dx = torch.randn(2, 6, generator=gen(1)), torch.randn(2, 6, generator=gen(2))
    ratio, cosine = linearity(lambda z: z @ A.T, x, None, dx, torch.tensor([0.0, 1.0, 10.0]))
    torch.testing.assert_close(ratio, torch.ones(2, 3))
    torch.testing.assert_close(cosine, torch.ones(2, 3))


@pytest.mark.parametrize("which", ["molrg", "gaussian", "empirical"])
@pytest.mark.parametrize("t", [0.05, 0.4, 0.95])
def test_closed_form_jacobians_equal_autograd_and_are_symmetric(which, t):
    schedule = ld.VP()
    if which == "molrg":
        model = ld.random_molrg(10, 3, [2, 3, 1], generator=gen(0), weights=[0.5, 0.3, 0.2])
    elif which == "gaussian":
        model = ld.GaussianDenoiser.fit(torch.randn(40, 10, generator=gen(0)) @ torch.randn(10, 10, generator=gen(1)))
    else:
        model = ld.EmpiricalDenoiser(torch.randn(7, 10, generator=gen(0)))
    D = model.denoiser(schedule)
    x = 2 * torch.randn(4, 10, generator=gen(2))
    closed = jacobian(D, x, t)  # takes the closed form
    auto = jacobian(lambda z, s: model.posterior_mean(z, s, schedule), x, t)  # autograd
    torch.testing.assert_close(closed, auto, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(closed, closed.transpose(1, 2), atol=1e-12, rtol=0)


def test_jacobian_svd_uses_a_closed_form_without_network_passes():
    model, schedule = ld.random_molrg(30, 3, 4, generator=gen(0)), ld.VP()
    x = ld.perturb(model.sample(3, generator=gen(1))[0], 0.6, schedule, generator=gen(2))[0]
    closed = jacobian_svd(model.denoiser(schedule), x, 0.6, k=5, tol=1e-9, max_iters=2000, generator=gen(3))
    auto = jacobian_svd(lambda z, s: model.posterior_mean(z, s, schedule), x, 0.6, k=5, tol=1e-9, max_iters=2000,
                        generator=gen(3))  # fmt: skip
    assert closed.passes == 0 and auto.passes > 0
    torch.testing.assert_close(closed.S, auto.S, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(closed.S, torch.linalg.svdvals(jacobian(model.denoiser(schedule), x, 0.6))[:, :5])


def test_rank_ratio_of_the_molrg_denoiser_is_r_over_d():
    # at small t the posterior weights are one-hot and J = c U_k U_k^T (Lemma 1): rank r of d. At larger t the
    # weights mix and J = c [sum_k w_k U_k U_k^T + 2 phi Cov_w(p)] spans up to all K r directions.
    from lowdim.experiments.jacobian_rank import rank_ratio

    model = ld.random_molrg(24, 2, 3, generator=gen(0))
    x0, _ = model.sample(16, generator=gen(1))
    times = torch.tensor([0.02, 0.05, 0.3, 0.6])
    result = rank_ratio(model.denoiser(ld.VP()), times, ld.VP(), x0=x0, draws=2, generator=gen(2))
    mean, std = result.mean, result.std
    assert result.ranks.shape == (4, 32)
    torch.testing.assert_close(mean[:2], torch.full((2,), 3 / 24, dtype=torch.float64), atol=1e-12, rtol=0)
    assert std[0] == 0 and bool(((mean[2:] > 3 / 24) & (mean[2:] <= 6 / 24)).all())
    # along PF-ODE trajectories the states at small t sit near one subspace too
    along = rank_ratio(model.denoiser(ld.VP()), times[:1], ld.VP(), shape=(24,), draws=6, generator=gen(3))
    assert along.ranks.shape == (1, 6) and bool((along.ranks == 3).all())


def test_trajectory_points_are_the_samplers_states():
    from lowdim.experiments.jacobian_rank import trajectory_points

    model, schedule = ld.random_molrg(12, 2, 2, generator=gen(0)), ld.VP()
    x_T = ld.sample_prior(schedule, (5, 12), generator=gen(1))
    times = torch.tensor([0.7, 0.3])
    states = trajectory_points(model.denoiser(schedule), x_T, times, schedule, steps=300)
    # integrating from 1 to 0.3 on a fine grid directly gives the same state to the solver's accuracy
    grid = torch.cat([torch.linspace(1, 0.3, 400), torch.tensor([0.0])])
    seen = {}
    ld.sample(model.denoiser(schedule), x_T, schedule, t_grid=grid,
              callback=lambda s: seen.setdefault(round(float(s["t"]), 6), s["x"]))  # fmt: skip
    torch.testing.assert_close(states[1], seen[0.3], atol=5e-4, rtol=0)  # both grids fine; a wrong time is off by ~0.1
    with pytest.raises(ValueError, match="^times"):
        trajectory_points(model.denoiser(schedule), x_T, torch.tensor([0.0]), schedule)
    # float64 times on a float32 trajectory: matched in the trajectory's precision; t = 1 is the noise itself
    x32 = x_T.float()
    D32 = ld.random_molrg(12, 2, 2, generator=gen(0), dtype=torch.float32).denoiser(schedule)
    states32 = trajectory_points(D32, x32, torch.tensor([1.0, 0.1, 0.3], dtype=torch.float64), schedule, steps=300)
    assert torch.equal(states32[0], x32)
    torch.testing.assert_close(states32[2], states[1].float(), atol=1e-4, rtol=0)


def test_top_k_ranks_equal_exact_ranks_when_the_rank_is_small():
    # J = A of rank 5 plus a weak tail: energy rank 5 at 0.99; the top-8 route with Hutchinson finds it
    from lowdim.jacobian import point_ranks

    d = 60
    q1 = torch.linalg.qr(torch.randn(d, d, generator=gen(0))).Q
    q2 = torch.linalg.qr(torch.randn(d, d, generator=gen(1))).Q
    s = torch.cat([torch.tensor([5.0, 4.0, 3.0, 2.5, 2.0]), torch.full((d - 5,), 0.01)])
    A = q1 @ torch.diag(s) @ q2.T
    x = torch.zeros(4, d)
    f = lambda z, t: z @ A.T  # noqa: E731
    exact = point_ranks(f, x, 0.5)
    fast = point_ranks(f, x, 0.5, k=8, probes=64, generator=gen(2))
    assert exact.tolist() == [5] * 4 and fast.tolist() == [5] * 4
    # a rank above k is reported as k + 1
    assert point_ranks(f, x, 0.5, k=3, generator=gen(3)).tolist() == [4] * 4


def _with_spectrum(s, seed=0):
    d = len(s)
    q1 = torch.linalg.qr(torch.randn(d, d, generator=gen(seed), dtype=torch.float64)).Q
    q2 = torch.linalg.qr(torch.randn(d, d, generator=gen(seed + 1), dtype=torch.float64)).Q
    return q1 @ torch.diag(s) @ q2.T


def _recorded_ranks(monkeypatch, A, items, **kwargs):
    """point_ranks of J = A at ``items`` points, and the network passes its operator made."""
    import sys

    from lowdim.jacobian import point_ranks

    module = sys.modules["lowdim.jacobian"]
    made = []

    class Recorded(module.BatchedJacobian):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            made.append(self)

    monkeypatch.setattr(module, "BatchedJacobian", Recorded)
    ranks = point_ranks(lambda z, t: z @ A.T, torch.zeros(items, A.shape[1], dtype=A.dtype), 0.5, **kwargs)
    (op,) = made
    return ranks, op.passes


@pytest.mark.parametrize("decay, exact_rank, share", [(0.85, 13, 0.5), (0.963, 52, 1.0)])
def test_top_k_ranks_stop_once_the_rank_settles(monkeypatch, decay, exact_rank, share):
    # geometric spectra: energy ranks 13 and 52 of d = 400 with k = 64; every draw of the route finds them to +-1.
    # Rank 13 stops with at most half the passes of a space of 1.5 k = 96 columns; the slow decay may take them all
    d, k = 400, 64
    A = _with_spectrum(decay ** torch.arange(d, dtype=torch.float64))
    assert int(effective_rank(torch.linalg.svdvals(A))) == exact_rank
    ranks, passes = _recorded_ranks(monkeypatch, A, 6, k=k, generator=gen(5))
    assert (ranks - exact_rank).abs().max() <= 1
    # graph + transposed graph + 16 probes + start (8 each), then 8 per product with J or J^T; 12 iterations at most
    full = 8 + 8 + 16 + 8 + 8 * (2 * 12 - 1)
    assert passes <= share * full


def test_top_k_ranks_flag_a_flat_spectrum_once_the_space_holds_k_columns(monkeypatch):
    # a slowly decaying spectrum with energy rank 383 of 400: "more than k" after k = 32 columns (4 blocks of 8),
    # plus one iteration to see the top-k energy stall, not after 1.5 k = 48
    d, k = 400, 32
    A = _with_spectrum(torch.linspace(1.0, 0.5, d, dtype=torch.float64))
    assert int(effective_rank(torch.linalg.svdvals(A))) > 300
    ranks, passes = _recorded_ranks(monkeypatch, A, 4, k=k, generator=gen(6))
    assert ranks.tolist() == [k + 1] * 4
    assert passes <= 8 + 8 + 16 + 8 + 8 * (2 * 5 - 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_jacobian_kernel_runs_unchanged_on_cuda():
    with torch.random.fork_rng(devices=[torch.cuda.current_device()]):  # the CUDA generator too
        torch.manual_seed(0)
        f = UNetDenoiser((2, 4, 4), ld.VP(), channels=(4, 8)).cuda()
        x = torch.randn(3, 2, 4, 4, device="cuda")
    J = jacobian(f, x, 0.5)
    assert J.device.type == "cuda"
    torch.testing.assert_close(J.cpu(), jacobian(f.cpu(), x.cpu(), 0.5), atol=1e-8, rtol=1e-6)
    f.cuda()
    U, S, V, _, _ = jacobian_svd(f, x, 0.5, k=3, tol=1e-6, generator=torch.Generator(device="cuda").manual_seed(0))
    assert S.device.type == "cuda"
    torch.testing.assert_close(S, torch.linalg.svdvals(J)[:, :3], rtol=1e-4, atol=1e-8)


def test_frobenius_estimate_is_unbiased():
    from lowdim.jacobian import frobenius_sq

    A = _slow_decay_matrix(d=30)
    x = torch.zeros(200, 30)
    est = frobenius_sq(lambda z: z @ A.T, x, None, probes=8, generator=gen(0))  # 200 independent estimates
    exact = float((A**2).sum())
    # each estimate has relative sd <= sqrt(2/8) = 0.5; their mean over 200 has sd <= 0.035 of the exact value
    assert abs(float(est.mean()) / exact - 1) < 3 * 0.5 / 200**0.5
    assert float(est.std()) / exact < 0.5
