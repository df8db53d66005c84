"""PCA, K-subspaces, subspace distances and the batched phase-transition sweeps."""

import itertools

import numpy as np
import pytest
import torch

import lowdim as ld
from lowdim._random import spawn
from lowdim.experiments.phase import fit_subspaces, phase_transition, sweep_data
from lowdim.subspaces import batched_recovery_error, k_subspaces, pca, subspace_distance, subspace_recovery_error
from tests.conftest import gen


def orthonormal(d, r, seed):
    return torch.linalg.qr(torch.randn(d, r, generator=gen(seed))).Q


def test_subspace_distance_is_the_projector_frobenius_distance():
    U, V = orthonormal(10, 3, 0), orthonormal(10, 4, 1)
    expected = torch.linalg.matrix_norm(U @ U.T - V @ V.T)
    torch.testing.assert_close(subspace_distance(U, V), expected, rtol=1e-12, atol=1e-12)
    # Invariant to the choice of basis (a rotation of the columns) and zero for the same span.
    Q = orthonormal(3, 3, 2)
    assert subspace_distance(U, U @ Q).item() < 1e-7


def test_recovery_error_minimizes_over_permutations():
    truth = list(ld.random_molrg(20, 3, [1, 2, 3], generator=gen(3)).bases)
    noisy = [torch.linalg.qr(U + 0.05 * torch.randn(U.shape, generator=gen(4 + k))).Q for k, U in enumerate(truth)]
    brute = min(
        sum(subspace_distance(noisy[j], truth[p[j]]) ** 2 for j in range(3)) for p in itertools.permutations(range(3))
    )
    expected = (brute / (2 * 6)).sqrt().item()
    assert subspace_recovery_error(noisy, truth) == pytest.approx(expected, rel=1e-10)
    assert subspace_recovery_error(noisy[::-1], truth) == pytest.approx(expected, rel=1e-10)
    assert subspace_recovery_error(truth, truth) < 1e-7
    # Orthogonal subspaces of equal rank are at the maximal error 1.
    Q = orthonormal(12, 6, 5)
    assert subspace_recovery_error([Q[:, :3]], [Q[:, 3:]]) == pytest.approx(1.0, abs=1e-12)


def test_batched_recovery_error_matches_the_scipy_matching():
    X, truth = sweep_data(24, 3, 3, [2, 5], trials=3, generator=gen(6))
    mask = torch.ones(len(X), 3, 3, dtype=torch.bool)
    est = fit_subspaces("ksubspaces", X, mask, generator=gen(7))
    batched = batched_recovery_error(est, truth, mask)
    for b in range(len(X)):
        loop = subspace_recovery_error(list(est[b]), list(truth[b]))
        assert batched[b].item() == pytest.approx(loop, abs=1e-7)
    # Unequal ranks through the column mask: zero columns do not count.
    mask[:, 0, 2] = False
    est[:, 0, :, 2] = 0
    truth = truth.clone()
    truth[:, 0, :, 2] = 0
    masked = batched_recovery_error(est, truth, mask)
    for b in range(len(X)):
        loop = subspace_recovery_error([est[b, 0, :, :2], *est[b, 1:]], [truth[b, 0, :, :2], *truth[b, 1:]])
        assert masked[b].item() == pytest.approx(loop, abs=1e-7)


def test_pca_is_the_top_eigenspace():
    X = torch.randn(50, 8, generator=gen(8)) * torch.arange(1.0, 9.0)
    U = pca(X, 3)
    _, _, Vt = np.linalg.svd(X.numpy(), full_matrices=False)
    assert subspace_distance(U, torch.from_numpy(Vt[:3].T)).item() < 1e-10
    torch.testing.assert_close(U.T @ U, torch.eye(3))
    shifted = X + 100.0
    assert subspace_distance(pca(shifted, 3, center=True), pca(X, 3, center=True)).item() < 1e-8
    assert subspace_distance(pca(shifted, 3), U).item() > 0.5  # uncentred PCA sees the mean


def test_k_subspaces_recovers_three_orthogonal_subspaces():
    # Issue 3: K = 3, d = 30, r = 3, 10 r points each: error < 1e-6 in >= 95 % of seeds.
    hits = 0
    for seed in range(40):
        g = gen(seed)
        model = ld.random_molrg(30, 3, 3, generator=g)
        X = torch.cat([U @ torch.randn(3, 30, generator=g) for U in model.bases], 1).T
        bases, labels = k_subspaces(X, 3, 3, generator=g)
        hits += subspace_recovery_error(bases, model.bases) < 1e-6
    assert hits >= 38


def test_k_subspaces_unequal_ranks_and_labels():
    model = ld.random_molrg(20, 2, [2, 5], generator=gen(9))
    X, labels = model.sample(300, gen(10))
    bases, found = k_subspaces(X, 2, [2, 5], generator=gen(11))
    assert [U.shape[1] for U in bases] == [2, 5]
    assert subspace_recovery_error(bases, model.bases) < 1e-6
    agree = (found == labels).float().mean().item()
    assert max(agree, 1 - agree) == 1.0


def test_pca_phase_transition_is_sharp_at_n_equals_r():
    res = phase_transition("pca", 48, 1, list(range(1, 9)), list(range(1, 16)), trials=20, generator=gen(12))
    assert res.success.shape == (8, 15) and res.errors.shape == (8, 15, 20)
    for i, r in enumerate(res.ranks):
        for j, n in enumerate(res.sample_sizes):
            if n < r:
                assert res.success[i, j] == 0.0
            else:
                assert res.success[i, j] >= 0.95
    np.testing.assert_array_equal(res.boundary(), np.arange(1, 9))


def test_batched_sweep_matches_a_per_trial_loop():
    ranks, sizes, trials = [1, 2, 3], [1, 2, 3, 4], 3
    res = phase_transition("ksubspaces", 16, 2, ranks, sizes, trials, generator=gen(13))
    loop = np.empty((len(ranks), len(sizes), trials))
    for i, (r, g) in enumerate(zip(ranks, spawn(gen(13), len(ranks)))):
        X, truth = sweep_data(16, 2, r, sizes, trials, g)
        for b, (j, k) in enumerate(itertools.product(range(len(sizes)), range(trials))):
            pts = X[b][X[b].norm(dim=1) > 0]
            bases, _ = k_subspaces(pts, 2, r, generator=gen(100 + b))
            loop[i, j, k] = subspace_recovery_error(bases, list(truth[b]))
    np.testing.assert_array_equal(res.success, (loop < res.threshold).mean(-1))


def test_rows_are_independently_seeded():
    full = phase_transition("pca", 12, 1, [1, 2, 3], [1, 2, 4], trials=3, generator=gen(17))
    head = phase_transition("pca", 12, 1, [1, 2], [1, 2, 4], trials=3, generator=gen(17))
    np.testing.assert_array_equal(full.errors[:2], head.errors)


def test_ksubspaces_boundary_is_linear_in_r():
    res = phase_transition("ksubspaces", 32, 2, [1, 2, 3, 4, 5, 6], list(range(1, 9)), trials=4, generator=gen(14))
    boundary = res.boundary()
    assert np.all(np.diff(boundary) > 0)
    slope, intercept = np.polyfit(res.ranks, boundary, 1)
    fit = slope * np.array(res.ranks) + intercept
    r2 = 1 - ((boundary - fit) ** 2).sum() / ((boundary - boundary.mean()) ** 2).sum()
    assert r2 >= 0.9 and slope > 0


def test_sweep_is_reproducible_and_validated():
    a = phase_transition("pca", 10, 1, [1, 2], [1, 3], trials=2, generator=gen(15))
    b = phase_transition("pca", 10, 1, [1, 2], [1, 3], trials=2, generator=gen(15))
    np.testing.assert_array_equal(a.errors, b.errors)
    with pytest.raises(ValueError, match="method"):
        phase_transition("dae-ish", 10, 1, [1], [1], 1)
    with pytest.raises(ValueError, match="^K must be 1"):
        phase_transition("pca", 10, 2, [1], [1], 1)
    with pytest.raises(ValueError, match="^ranks must satisfy"):
        phase_transition("ksubspaces", 10, 3, [4], [1], 1)
    with pytest.raises(ValueError, match="r must be <= d"):
        pca(torch.randn(5, 3), 4)
    with pytest.raises(ValueError, match="K must be <="):
        k_subspaces(torch.randn(2, 3), 3, 1)


def test_dae_sweep_agrees_with_pca_for_k_1():
    # Issue 3 asks >= 90 % agreement on the full grid (cached sweep); here a small grid, cell-wise within 0.25.
    ranks, sizes = [1, 2, 3], [1, 2, 3, 4, 6]
    dae = phase_transition("dae", 16, 1, ranks, sizes, trials=4, generator=gen(16), steps=300)
    ref = phase_transition("pca", 16, 1, ranks, sizes, trials=4, generator=gen(16))
    agree = np.abs(dae.success - ref.success) <= 0.25
    assert agree.mean() >= 0.9
    # Below N = r the DAE, like PCA, never recovers the subspace.
    for i, r in enumerate(ranks):
        for j, n in enumerate(sizes):
            if n < r:
                assert dae.success[i, j] == 0.0


def test_dae_sweep_follows_ksubspaces_for_k_2():
    ranks, sizes = [1, 2], [1, 2, 4]
    dae = phase_transition("dae", 16, 2, ranks, sizes, trials=3, generator=gen(18), steps=300)
    ref = phase_transition("ksubspaces", 16, 2, ranks, sizes, trials=3, generator=gen(18))
    assert (np.abs(dae.success - ref.success) <= 0.34).mean() >= 0.8
    assert dae.success[1, 0] == 0.0 and dae.success[0, -1] == 1.0  # N < r never; N >> r does


def test_linear_boundary_fits_a_line_through_the_boundary():
    res = ld.PhaseTransition("pca", 8, 1, [1, 2, 3, 4], [1, 2, 3, 4, 5, 6, 7], np.zeros((4, 7, 1)), 0.1)
    res.errors[:, :, 0] = np.array([[0 if n >= 2 * r - 1 else 1 for n in res.sample_sizes] for r in res.ranks])
    np.testing.assert_array_equal(res.boundary(), [1, 3, 5, 7])
    slope, intercept, r2 = res.linear_boundary()
    assert (slope, intercept) == pytest.approx((2.0, -1.0)) and r2 == pytest.approx(1.0)
