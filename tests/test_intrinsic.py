"""Intrinsic dimension: PCA on subspaces, the Levina-Bickel MLE on subspaces and manifolds, against independent routes."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from lowdim.intrinsic import _knn_distances, mle_dimension, mle_dimension_per_point, pca_dimension, pca_spectrum
from tests.conftest import gen


def orthonormal(d, r, seed):
    """A uniformly random ``(d, r)`` matrix with orthonormal columns."""
    Q, R = torch.linalg.qr(torch.randn(d, r, generator=gen(seed)))
    return Q * torch.sign(torch.diagonal(R))


def subspace_data(n, r, d, seed, noise=0.0):
    """``n`` points ``U a + noise * e`` with ``a ~ N(0, I_r)`` on a random r-dim subspace of R^d."""
    g = gen(seed)
    a = torch.randn(n, r, generator=g)
    x = a @ orthonormal(d, r, seed + 1000).T
    return x + noise * torch.randn(n, d, generator=g)


def sphere(n, m, seed):
    """``n`` points uniform on the unit sphere S^m in R^{m+1}."""
    z = torch.randn(n, m + 1, generator=gen(seed))
    return z / torch.linalg.vector_norm(z, dim=1, keepdim=True)


def swiss_roll(n, seed):
    g = gen(seed)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    h = 21 * torch.rand(n, generator=g)
    return torch.stack([t * torch.cos(t), h, t * torch.sin(t)], 1)


def reference_mle(x, k):
    """Independent route: scipy KD-tree neighbours, numpy logs, per-point inverses averaged (MacKay-Ghahramani)."""
    x = x.reshape(x.shape[0], -1).numpy()
    T, _ = cKDTree(x).query(x, k=k + 1)
    T = T[:, 1:]  # drop the point itself
    inv = np.mean(np.log(T[:, -1:] / T[:, :-1]), axis=1)
    return 1 / np.mean(inv), 1 / inv


# ---------------------------------------------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("r", [1, 3, 7, 15])
def test_pca_dimension_exact_on_noise_free_subspace(r):
    x = subspace_data(500, r, 30, seed=r)
    assert pca_dimension(x, 0.99) == r
    assert pca_dimension(x, 1 - 1e-9) == r  # the d - r trailing s_i are rounding noise (s_i^2 ~ 1e-30)
    spectrum = pca_spectrum(x)
    assert spectrum.shape == (30,)
    assert spectrum[:r].sum().item() == pytest.approx(1, abs=1e-12)


@pytest.mark.parametrize("r", [2, 5, 10])
def test_pca_dimension_with_small_noise(r):
    x = subspace_data(1000, r, 30, seed=10 + r, noise=1e-3)
    assert pca_dimension(x, 0.99) == r
    # Noise makes the spectrum full rank: at variance 1 all 30 directions count (the test can fail).
    assert pca_dimension(x, 1.0) == 30


def test_pca_level_is_a_variance_fraction():
    # Centered points +-a e1, +-b e2 with a^2 = 0.95, b^2 = 0.05: variance fractions exactly 0.95 and 0.05.
    a, b = math.sqrt(0.95), math.sqrt(0.05)
    x = torch.tensor([[a, 0.0], [-a, 0.0], [0.0, b], [0.0, -b]])
    np.testing.assert_allclose(pca_spectrum(x).numpy(), [0.95, 0.05], rtol=0, atol=1e-14)
    assert pca_dimension(x, 0.94) == 1
    assert pca_dimension(x, 0.96) == 2  # would be 1 if the level were applied to singular values (0.96**2 < 0.95)


def test_pca_spectrum_matches_covariance_eigenvalues():
    x = torch.randn(200, 3, 4, generator=gen(1)) * torch.linspace(0.1, 3, 12).reshape(3, 4)
    expected = np.sort(np.linalg.eigvalsh(np.cov(x.reshape(200, -1).numpy(), rowvar=False)))[::-1]
    spectrum = pca_spectrum(x)
    assert spectrum.shape == (12,)
    np.testing.assert_allclose(spectrum.numpy(), expected / expected.sum(), rtol=1e-10, atol=1e-14)
    assert bool((spectrum[:-1] >= spectrum[1:]).all())


def test_pca_constant_data():
    x = torch.ones(5, 3)
    assert pca_dimension(x) == 0
    assert torch.equal(pca_spectrum(x), torch.zeros(3))


# ---------------------------------------------------------------------------------------------------------------- MLE


def test_mle_hand_computed():
    # Points 0, 1, 3 on a line, k = 2: inverses log 3, log 2, log 1.5, so m = 3 / log 9.
    x = torch.tensor([[0.0], [1.0], [3.0]])
    assert mle_dimension(x, k=2) == pytest.approx(3 / math.log(9), rel=1e-14)
    expected = 1 / np.log([3, 2, 1.5])
    np.testing.assert_allclose(mle_dimension_per_point(x, k=2).numpy(), expected, rtol=1e-14)


@pytest.mark.parametrize("k", [2, 10])
def test_mle_matches_kdtree_reference(k):
    x = torch.randn(300, 6, generator=gen(2)) @ torch.randn(6, 9, generator=gen(3))
    expected, expected_local = reference_mle(x, k)
    assert mle_dimension(x, k) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(mle_dimension_per_point(x, k).numpy(), expected_local, rtol=1e-10)


@pytest.mark.parametrize("chunk_size", [1, 7, 120])
def test_knn_distances_blocking_is_exact(chunk_size):
    x = torch.randn(120, 5, generator=gen(4))
    T, _ = cKDTree(x.numpy()).query(x.numpy(), k=12)
    np.testing.assert_allclose(_knn_distances(x, 11, chunk_size).numpy(), T[:, 1:], rtol=1e-12)


def test_knn_distances_resolve_close_pairs_far_from_origin():
    # Pairs 1e-6 apart at distance ~1e4 from the origin: |x|^2 + |y|^2 - 2 x.y loses all digits here.
    base = 1e4 + torch.randn(50, 8, generator=gen(5))
    x = torch.cat([base, base + 1e-6 * torch.randn(50, 8, generator=gen(6))])
    T, _ = cKDTree(x.numpy()).query(x.numpy(), k=3)
    np.testing.assert_allclose(_knn_distances(x, 2).numpy(), T[:, 1:], rtol=1e-8)


@pytest.mark.parametrize("m, k", [(2, 10), (5, 10), (8, 10), (2, 20), (8, 20)])
def test_mle_recovers_subspace_dimension(m, k):
    # Gaussian coefficients on a random m-dim subspace of R^40 (uniform-in-a-cube data are biased low by the
    # cube's faces: about 6.8 for m = 8 at N = 2000).
    x = subspace_data(2000, m, 40, seed=20 + m)
    assert mle_dimension(x, k) == pytest.approx(m, rel=0.10)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_mle_recovers_sphere_dimension(m):
    # S^m in R^{m+1}, rotated into R^30: a curved manifold with no boundary.
    x = sphere(2000, m, seed=30 + m) @ orthonormal(30, m + 1, seed=40 + m).T
    assert mle_dimension(x, k=10) == pytest.approx(m, rel=0.15)


def test_mle_recovers_swiss_roll_dimension():
    assert mle_dimension(swiss_roll(2000, seed=7), k=10) == pytest.approx(2, rel=0.15)


def test_mle_sees_a_line_as_one_dimensional():
    # A helix in R^3 (intrinsic dimension 1), not 3: the test can fail if the estimator used the ambient dimension.
    t = 4 * math.pi * torch.rand(1000, generator=gen(8))
    x = torch.stack([torch.cos(t), torch.sin(t), 0.2 * t], 1)
    assert mle_dimension(x, k=10) == pytest.approx(1, rel=0.10)


def test_mle_ignores_ambient_dimension():
    z = sphere(800, 3, seed=9)
    small = z @ orthonormal(10, 4, seed=10).T
    large = z @ orthonormal(100, 4, seed=11).T
    assert mle_dimension(large, 12) == pytest.approx(mle_dimension(small, 12), rel=0, abs=1e-8)
    local_small, local_large = mle_dimension_per_point(small, 12), mle_dimension_per_point(large, 12)
    np.testing.assert_allclose(local_large.numpy(), local_small.numpy(), rtol=1e-8)


def test_mle_invariant_to_scale_and_shift():
    x = subspace_data(800, 4, 12, seed=12)
    assert mle_dimension(3e3 * x + 5.0, 10) == pytest.approx(mle_dimension(x, 10), rel=1e-9)


def test_mle_flattens_items():
    x = subspace_data(500, 3, 12, seed=13)
    assert mle_dimension(x.reshape(500, 3, 2, 2), 10) == mle_dimension(x, 10)


def test_mle_drops_exact_duplicates():
    x = subspace_data(400, 3, 10, seed=14)
    repeated = torch.cat([x, x[:100], x[:7]])
    assert mle_dimension(repeated, 10) == pytest.approx(mle_dimension(x, 10), rel=1e-12)
    local, local_repeated = mle_dimension_per_point(x, 10), mle_dimension_per_point(repeated, 10)
    assert local_repeated.shape == (507,)
    assert bool(torch.isfinite(local_repeated).all())
    expected = torch.cat([local, local[:100], local[:7]])
    np.testing.assert_allclose(local_repeated.numpy(), expected.numpy(), rtol=1e-12)


def test_mle_float32_close_to_float64():
    x = sphere(600, 2, seed=15) @ orthonormal(20, 3, seed=16).T
    assert mle_dimension(x.float(), 10) == pytest.approx(mle_dimension(x, 10), rel=1e-4)
    assert mle_dimension_per_point(x.float(), 10).dtype == torch.float32


def test_reproducible():
    x = subspace_data(500, 5, 40, seed=17)
    assert mle_dimension(x, 10) == mle_dimension(x.clone(), 10)
    assert torch.equal(mle_dimension_per_point(x, 10), mle_dimension_per_point(x.clone(), 10))
    assert pca_dimension(x) == pca_dimension(x.clone())
    assert torch.equal(pca_spectrum(x), pca_spectrum(x.clone()))
    assert torch.equal(subspace_data(500, 5, 40, seed=17), x)  # the seeded data themselves


# ---------------------------------------------------------------------------------------------------------- bad input

X = torch.randn(20, 3, generator=gen(0))

CASES = [
    (lambda: mle_dimension(X, k=20), ValueError, "k"),
    (lambda: mle_dimension(X, k=25), ValueError, "k"),
    (lambda: mle_dimension(X, k=1), ValueError, "k"),
    (lambda: mle_dimension(X, k=0), ValueError, "k"),
    (lambda: mle_dimension(X, k=2.5), TypeError, "k"),
    (lambda: mle_dimension(torch.cat([X[:5]] * 4), k=5), ValueError, "distinct"),
    (lambda: mle_dimension(torch.full((20, 3), math.nan), k=5), ValueError, "X"),
    (lambda: mle_dimension(torch.zeros(20), k=5), ValueError, "X"),
    (lambda: mle_dimension(np.zeros((20, 3)), k=5), TypeError, "X"),
    (lambda: mle_dimension_per_point(X, k=1), ValueError, "k"),
    (lambda: mle_dimension_per_point(torch.full((20, 3), math.inf), k=5), ValueError, "X"),
    (lambda: pca_dimension(X, variance=0.0), ValueError, "variance"),
    (lambda: pca_dimension(X, variance=1.5), ValueError, "variance"),
    (lambda: pca_dimension(X, variance=-0.1), ValueError, "variance"),
    (lambda: pca_dimension(X, variance=math.nan), ValueError, "variance"),
    (lambda: pca_dimension(X, variance="0.9"), TypeError, "variance"),
    (lambda: pca_dimension(torch.full((20, 3), math.nan)), ValueError, "X"),
    (lambda: pca_spectrum(torch.zeros(20, dtype=torch.float64)), ValueError, "X"),
    (lambda: pca_spectrum(torch.zeros(4, 3, dtype=torch.long)), TypeError, "X"),
]


@pytest.mark.parametrize("call, exc, name", CASES)
def test_bad_input_raises_naming_argument(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
