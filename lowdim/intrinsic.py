r"""Intrinsic dimension of a point cloud: PCA (linear) and the Levina--Bickel maximum-likelihood estimator (nonlinear).

**PCA.** With :math:`s_1 \ge s_2 \ge \dots` the singular values of the centered data matrix
:math:`X - \bar x` (items flattened to rows), the explained-variance fractions are
:math:`\lambda_i = s_i^2 / \sum_j s_j^2` and the PCA dimension at the level ``variance`` is

.. math::
    \hat r = \min\Big\{k :\ \sum_{i\le k} s_i^2 \ \ge\ \mathrm{variance}\cdot \sum_i s_i^2\Big\},

i.e. ``variance`` is a fraction of the *variance* (squared singular values), not of the singular values. (The
Jacobian's rank "by energy", :func:`~lowdim.effective_rank`, is set by a fraction of the norm instead: level
``energy`` keeps :math:`\mathrm{energy}^2` of the squared singular values.)

**MLE** (Levina & Bickel 2004, with the MacKay & Ghahramani 2005 correction). With :math:`T_j(x)` the distance
from :math:`x` to its :math:`j`-th nearest other point,

.. math::
    \hat m_k(x_i)^{-1} = \frac{1}{k-1}\sum_{j=1}^{k-1}\log\frac{T_k(x_i)}{T_j(x_i)},\qquad
    \hat m_k = \Big[\frac1N\sum_{i=1}^N \hat m_k(x_i)^{-1}\Big]^{-1}.

For a Poisson process of constant density on an :math:`m`-dimensional manifold,
:math:`m\sum_{j<k}\log(T_k/T_j)\sim\mathrm{Gamma}(k-1,1)`, so each :math:`\hat m_k(x_i)^{-1}` is unbiased for
:math:`1/m`; averaging the inverses (rather than the per-point estimates) keeps that. The estimator only sees
distances, so it does not depend on the ambient dimension, and it is invariant to isometries and rescaling.
Boundaries and curvature at the scale :math:`T_k` bias it (downward for data filling a cube in high dimension).
"""

from __future__ import annotations

import math

import torch

from ._checks import check_batch, check_positive_int

Tensor = torch.Tensor

# Largest number of tensor elements one block of the nearest-neighbour search materializes (32 MiB in float64).
_BLOCK_ELEMENTS = 1 << 22


def _centered_rows(X: Tensor) -> Tensor:
    X = check_batch(X, "X")
    flat = X.reshape(X.shape[0], -1)
    return flat - flat.mean(0, keepdim=True)


def _squared_singular_values(X: Tensor) -> Tensor:
    r"""Descending :math:`s_i^2` of the centered ``(N, D)`` data, shape ``(min(N, D),)``.

    Eigenvalues of the smaller Gram matrix (:math:`X^\top X` or :math:`XX^\top`), clamped at 0: about twice as
    fast as an SVD for ``N, D`` in the thousands; values below about ``eps * s_1^2`` are rounding noise.
    """
    Xc = _centered_rows(X)
    gram = Xc.T @ Xc if Xc.shape[0] >= Xc.shape[1] else Xc @ Xc.T
    return torch.linalg.eigvalsh(gram).flip(0).clamp(min=0)


def pca_spectrum(X: Tensor) -> Tensor:
    r"""Explained-variance fractions :math:`s_i^2/\sum_j s_j^2` of the centered data, in descending order.

    ``X``: ``(N, *shape)`` (items are flattened to ``D = prod(shape)`` features). Returns a ``(min(N, D),)``
    tensor with ``X``'s dtype that sums to 1 (all zeros when every item is the same). Computed from the eigenvalues
    of the smaller Gram matrix, so fractions below about the dtype's ``eps`` are rounding noise.
    """
    s2 = _squared_singular_values(X)
    total = s2.sum()
    return s2 / total if total > 0 else torch.zeros_like(s2)


def pca_dimension(X: Tensor, variance: float = 0.99) -> int:
    r"""Smallest :math:`k` with :math:`\sum_{i\le k} s_i^2 \ge \mathrm{variance}\sum_i s_i^2` (PCA, variance fraction).

    ``X``: ``(N, *shape)``; :math:`s_i` are the singular values of the centered ``(N, D)`` data matrix, so
    ``variance`` is the fraction of the total *variance* kept (``variance=0.99`` keeps 99% of
    :math:`\sum_i s_i^2`; it is not applied to :math:`s_i`). ``variance`` must lie in ``(0, 1]``; ``variance=1``
    counts every direction with nonzero variance, rounding noise included. Returns 0 when every item is the same.
    """
    if isinstance(variance, bool) or not isinstance(variance, (int, float)):
        raise TypeError(f"variance must be a number, got {type(variance).__name__}")
    if not (math.isfinite(variance) and 0 < variance <= 1):
        raise ValueError(f"variance must lie in (0, 1], got {variance}")
    s2 = _squared_singular_values(X)
    cumulative = torch.cumsum(s2, 0)
    total = cumulative[-1]
    if total <= 0:
        return 0
    # cumulative is nondecreasing and its last entry is the total, so the count below is at most len - 1.
    return int((cumulative < variance * total).sum().item()) + 1


def _knn_distances(X: Tensor, k: int, chunk_size: int | None = None) -> Tensor:
    r"""Distances :math:`T_1(x_i)\le\dots\le T_k(x_i)` to the ``k`` nearest other rows, shape ``(N, k)``.

    ``X``: ``(N, D)`` with ``k < N``. Exact search over blocks of rows: candidates are ranked by
    :math:`\|x_j\|^2 - 2x_i^\top x_j` (the matrix-product form of ``torch.cdist``, one ``addmm`` per block), then the
    ``min(N - 1, 2k)`` best candidates are re-measured as :math:`\|x_i - x_j\|`, which avoids the cancellation of
    the matrix-product form for close pairs. Memory per block is bounded by ``_BLOCK_ELEMENTS`` tensor elements
    (or ``chunk_size`` rows, when given).
    """
    N, D = X.shape
    X = X - X.mean(0, keepdim=True)  # translation invariant; shrinks the norms in the matrix-product form
    sq_norms = (X * X).sum(1)
    n_cand = min(N - 1, 2 * k)
    rows_per_block = chunk_size or max(1, _BLOCK_ELEMENTS // N)
    candidates = []
    for start in range(0, N, rows_per_block):
        block = X[start : start + rows_per_block]
        score = torch.addmm(sq_norms, block, X.T, alpha=-2)  # ||x_i - x_j||^2 - ||x_i||^2
        b = block.shape[0]
        rows = torch.arange(b, device=X.device)
        score[rows, rows + start] = math.inf  # exclude the point itself
        candidates.append(score.topk(n_cand, dim=1, largest=False, sorted=False).indices)
    candidates = torch.cat(candidates)
    rows_per_block = chunk_size or max(1, _BLOCK_ELEMENTS // (n_cand * D))
    out = []
    for start in range(0, N, rows_per_block):
        block = X[start : start + rows_per_block]
        exact = torch.linalg.vector_norm(block[:, None, :] - X[candidates[start : start + rows_per_block]], dim=-1)
        out.append(exact.sort(dim=1).values[:, :k])
    return torch.cat(out)


def _distinct_inverse_estimates(X: Tensor, k: int) -> tuple[Tensor, Tensor]:
    r"""Per-point :math:`\hat m_k(x)^{-1}` on the distinct rows of ``X``, and the map from rows to distinct rows.

    Returns ``(inv, index)`` with shapes ``(M,)`` and ``(N,)``: row ``n`` of ``X`` equals distinct row ``index[n]``.
    """
    X = check_batch(X, "X")
    k = check_positive_int(k, "k")
    N = X.shape[0]
    if k < 2:
        raise ValueError(f"k must be at least 2 (the estimator uses log(T_k / T_j) for j < k), got {k}")
    if k >= N:
        raise ValueError(f"k must be smaller than the number of points N = {N}, got k = {k}")
    flat = X.reshape(N, -1)
    distinct, index = torch.unique(flat, dim=0, return_inverse=True)
    if distinct.shape[0] == N:  # no duplicates: keep the input order
        distinct, index = flat, torch.arange(N, device=X.device)
    elif distinct.shape[0] < k + 1:
        raise ValueError(
            f"k = {k} needs at least k + 1 = {k + 1} distinct points in X (exact duplicates are dropped), "
            f"got {distinct.shape[0]}"
        )
    T = _knn_distances(distinct, k)
    if bool((T[:, 0] <= 0).any()):
        raise ValueError("X has distinct points whose distance underflows to 0; rescale X")
    log_T = torch.log(T)
    inv = (log_T[:, k - 1 : k] - log_T[:, : k - 1]).sum(1) / (k - 1)
    return inv, index


def mle_dimension_per_point(X: Tensor, k: int = 10) -> Tensor:
    r"""Local estimates :math:`\hat m_k(x_i) = [\frac{1}{k-1}\sum_{j<k}\log(T_k(x_i)/T_j(x_i))]^{-1}` (Levina & Bickel 2004).

    ``X``: ``(N, *shape)`` (items flattened); ``2 <= k < N``. Returns an ``(N,)`` tensor with ``X``'s dtype.
    Exact duplicate rows are dropped before the neighbour search (a zero distance would make the logarithm
    infinite) and each duplicate gets the estimate of its distinct point; at least ``k + 1`` distinct points are
    needed. A point whose ``k`` neighbours are all equidistant gets ``inf``. These are noisy (each is
    :math:`m(k-1)/\mathrm{Gamma}(k-1,1)` in the ideal case); use :func:`mle_dimension` for the global estimate.
    """
    inv, index = _distinct_inverse_estimates(X, k)
    return 1.0 / inv[index]


def mle_dimension(X: Tensor, k: int = 10) -> float:
    r"""MLE of intrinsic dimension :math:`\hat m_k = [\frac1M\sum_i \hat m_k(x_i)^{-1}]^{-1}` (Levina & Bickel 2004;
    MacKay & Ghahramani 2005).

    ``X``: ``(N, *shape)`` (items flattened to ``D`` features); ``2 <= k < N`` neighbours. The mean runs over the
    ``M`` distinct rows of ``X`` (exact duplicates are dropped first; ``M >= k + 1`` is needed). Exact nearest
    neighbours in blocks of rows, so memory stays bounded for ``N`` in the thousands and ``D`` in the thousands.
    Deterministic. Returns a Python float (``inf`` only if every point has ``k`` equidistant neighbours).
    """
    inv, _ = _distinct_inverse_estimates(X, k)
    mean_inv = inv.mean().item()
    return math.inf if mean_inv == 0 else 1.0 / mean_inv
