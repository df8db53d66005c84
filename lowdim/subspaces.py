r"""Subspace estimation: PCA (:math:`K = 1`), K-subspaces (:math:`K > 1`) and how far an estimate is from the truth.

Both estimators maximize the same objective as the denoising loss of the MoLRG-parameterized DAE
(Wang et al. 2024, Theorems 1–2), for data :math:`X = [x^{(1)}, \dots, x^{(N)}]` with zero mean:

.. math:: \max_{U_1,\dots,U_K}\ \sum_{i=1}^N \max_k \|U_k^\top x^{(i)}\|^2
    \quad\text{s.t. } U_k^\top U_k = I_{r_k}.

For :math:`K = 1` the maximizer is the top-:math:`r` eigenspace of :math:`\sum_i x^{(i)}x^{(i)\top}` (uncentred PCA).
The batched routines below take a stack of data sets ``(B, N, d)``; padding a data set with zero rows changes
neither the objective nor the covariance, so data sets of different sizes share one tensor.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from scipy.optimize import linear_sum_assignment

from ._checks import check_generator, check_positive_int, check_tensor
from ._random import multinomial

Tensor = torch.Tensor


def _check_data(X: Tensor, name: str = "X") -> Tensor:
    X = check_tensor(X, name, min_dim=2)
    if X.dim() != 2:
        raise ValueError(f"{name} must have shape (N, d), got {tuple(X.shape)}")
    return X


def _ranks(r: int | Sequence[int], K: int, d: int) -> list[int]:
    ranks = [r] * K if isinstance(r, int) else list(r)
    if len(ranks) != K:
        raise ValueError(f"r must be an int or a list of K = {K} ints, got {r}")
    for rk in ranks:
        check_positive_int(rk, "r")
        if rk > d:
            raise ValueError(f"r must be <= d = {d}, got r = {rk}")
    return ranks


def orthonormal_columns(W: Tensor) -> Tensor:
    """Q factor of ``W`` ``(..., d, r)`` with signs fixed so that ``R`` has a positive diagonal: the unique QR, so a
    Gaussian ``W`` gives a uniformly distributed orthonormal basis."""
    Q, R = torch.linalg.qr(W)
    return Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).unsqueeze(-2)


def top_eigenvectors(C: Tensor, r: int, values: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Top-``r`` eigenvectors of symmetric matrices ``C`` ``(..., d, d)``, as columns ``(..., d, r)``, largest first;
    with ``values=True`` also their eigenvalues ``(..., r)``."""
    vals, vecs = torch.linalg.eigh(C)
    top = vecs[..., -r:].flip(-1)
    return (top, vals[..., -r:].flip(-1)) if values else top


def pca(X: Tensor, r: int, center: bool = False) -> Tensor:
    r"""Orthonormal basis ``(d, r)`` of the top-``r`` principal subspace of ``X`` ``(N, d)``.

    Uncentred by default: the eigenvectors of :math:`\sum_i x^{(i)} x^{(i)\top}`, which is what the denoising loss
    of a zero-mean low-rank Gaussian maximizes. ``center=True`` subtracts the mean first.
    """
    X = _check_data(X)
    r = _ranks(r, 1, X.shape[1])[0]
    if center:
        X = X - X.mean(0)
    return top_eigenvectors(X.T @ X, r)


def _residual2(U: Tensor, V: Tensor) -> Tensor:
    r""":math:`\|(I - VV^\top)U\|_F^2` computed from the residual itself (no cancellation for nearby subspaces)."""
    return (U - V @ (V.transpose(-1, -2) @ U)).pow(2).sum((-1, -2))


def subspace_distance(U: Tensor, V: Tensor) -> Tensor:
    r""":math:`\|UU^\top - VV^\top\|_F` for orthonormal ``U`` ``(..., d, r)`` and ``V`` ``(..., d, s)``.

    Computed as :math:`\big(\|(I - VV^\top)U\|_F^2 + \|(I - UU^\top)V\|_F^2\big)^{1/2}` — the same number, without
    :math:`d\times d` matrices and accurate to round-off even when the spans nearly agree.
    """
    return (_residual2(U, V) + _residual2(V, U)).sqrt()


def principal_cosines(U: Tensor, V: Tensor) -> Tensor:
    r"""Cosines of the principal angles between the spans of orthonormal ``U`` ``(d, r)`` and ``V`` ``(d, s)``:
    the singular values of :math:`U^\top V`, largest first, ``(min(r, s),)``."""
    return torch.linalg.svdvals(U.T @ V)


def subspace_recovery_error(estimate: Sequence[Tensor] | Tensor, truth: Sequence[Tensor] | Tensor) -> float:
    r"""Relative error of a union of subspaces, minimized over matchings of the components:

    .. math:: \min_\pi \Big(\sum_k \|\hat U_k\hat U_k^\top - U_{\pi(k)}U_{\pi(k)}^\top\|_F^2 \Big/ \sum_k 2 r_k\Big)^{1/2}
        \in [0, 1],

    0 for exact recovery and 1 when every estimated subspace is orthogonal to its match. The matching is solved
    with :func:`scipy.optimize.linear_sum_assignment`. Both arguments: ``K`` bases ``(d, r_k)`` (a list or a
    ``(K, d, r)`` tensor).
    """
    est, tru = list(estimate), list(truth)
    total = sum(subspace_distance(est[i], tru[j]) ** 2 for i, j in match_subspaces(est, tru))
    return float((total / sum(2 * T.shape[-1] for T in tru)).sqrt())


def match_subspaces(estimate: Sequence[Tensor] | Tensor, truth: Sequence[Tensor] | Tensor) -> list[tuple[int, int]]:
    r"""Pairs ``(i, j)`` matching estimated component ``i`` to true component ``j`` so as to minimize
    :math:`\sum\|\hat U_i\hat U_i^\top - U_jU_j^\top\|_F^2` (:func:`scipy.optimize.linear_sum_assignment`)."""
    est, tru = list(estimate), list(truth)
    if len(est) != len(tru):
        raise ValueError(f"estimate and truth must have the same number of components, got {len(est)} and {len(tru)}")
    cost = torch.stack([torch.stack([subspace_distance(E, T) ** 2 for T in tru]) for E in est])
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    return [(int(i), int(j)) for i, j in zip(rows, cols)]


def batched_recovery_error(estimate: Tensor, truth: Tensor, col_mask: Tensor | None = None) -> Tensor:
    """:func:`subspace_recovery_error` for stacks ``(B, K, d, r)``, matching by enumerating the ``K!`` permutations.

    ``col_mask`` ``(B, K, r)`` marks the columns in use when ranks differ (unused columns are zero in both stacks).
    Returns ``(B,)``.
    """
    B, K, _, r = truth.shape
    if col_mask is None:
        col_mask = torch.ones(B, K, r, dtype=torch.bool, device=truth.device)
    ranks = col_mask.sum(-1).to(truth.dtype)  # (B, K)
    # pair_cost[b, j, l] = ||P_hat_j - P_l||_F^2, from residuals (zero columns contribute nothing).
    est, tru = estimate[:, :, None], truth[:, None, :]  # broadcast to (B, K, K, d, r)
    pair_cost = _residual2(est, tru) + _residual2(tru, est)
    best = None
    for perm in itertools.permutations(range(K)):
        total = sum(pair_cost[:, j, perm[j]] for j in range(K))
        best = total if best is None else torch.minimum(best, total)
    return (best.clamp_min(0) / (2 * ranks.sum(1))).sqrt()


def k_subspaces_batched(
    X: Tensor,
    col_mask: Tensor,
    restarts: int = 10,
    max_iters: int = 100,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""K-subspaces on a stack of data sets ``X`` ``(B, N, d)``, all restarts run at once.

    ``col_mask`` ``(B, K, r_max)`` (bool) marks the basis columns in use: component ``k`` of data set ``b`` has rank
    ``col_mask[b, k].sum()``. Each restart starts from a greedy seeding (see ``_greedy_init``) around a random
    first point and alternates

    1. assignment :math:`k_i = \arg\max_k \|U_k^\top x^{(i)}\|^2`;
    2. refit :math:`U_k` = top-:math:`r_k` eigenvectors of :math:`\sum_{i: k_i = k} x^{(i)}x^{(i)\top}`,

    until no label changes (or ``max_iters``); the restart with the largest objective
    :math:`\sum_i \max_k \|U_k^\top x^{(i)}\|^2` is kept. Returns ``(bases (B, K, d, r_max), labels (B, N),
    objective (B,))``.
    """
    B, N, d = X.shape
    K, r_max = col_mask.shape[1:]
    R = restarts
    Xr = X.repeat_interleave(R, 0)  # (B R, N, d)
    mask = col_mask.repeat_interleave(R, 0)[:, :, None, :].to(X.dtype)  # (B R, K, 1, r)
    U = _greedy_init(Xr, col_mask.repeat_interleave(R, 0), generator) * mask
    labels = torch.full((B * R, N), -1, dtype=torch.long, device=X.device)
    for _ in range(max_iters):
        scores = torch.einsum("bnd,bkdr->bnkr", Xr, U).pow(2).sum(-1)  # (B R, N, K)
        new_labels = scores.argmax(-1)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
        onehot = torch.nn.functional.one_hot(labels, K).to(X.dtype)  # (B R, N, K)
        C = torch.einsum("bnk,bnd,bne->bkde", onehot, Xr, Xr)
        U = top_eigenvectors(C, r_max) * mask
    objective = torch.einsum("bnd,bkdr->bnkr", Xr, U).pow(2).sum(-1).amax(-1).sum(-1)  # (B R,)
    best = objective.reshape(B, R).argmax(1)
    pick = torch.arange(B, device=X.device) * R + best
    return U[pick], labels[pick], objective[pick]


def _greedy_init(X: Tensor, col_mask: Tensor, generator: torch.Generator | None) -> Tensor:
    r"""Seed bases ``(B, K, d, r_max)`` for data ``(B, N, d)`` and ranks given by ``col_mask`` ``(B, K, r_max)``,
    like k-means++ for subspaces.

    Component k is spanned by a random nonzero point and its ``r_k - 1`` neighbours of largest :math:`|\cos|`; each
    next component starts from the point worst explained by the subspaces so far (smallest fraction of its
    energy captured) and takes its neighbours the same way. Points on a common subspace have large mutual
    :math:`|\cos|`, so on clean data the seeds often land on the true subspaces.
    """
    B, N, d = X.shape
    K, r = col_mask.shape[1:]
    norms = X.norm(dim=-1)  # (B, N); zero rows are padding
    unit = X / norms.clamp_min(torch.finfo(X.dtype).tiny)[..., None]
    affinity = (unit @ unit.transpose(1, 2)).abs()  # (B, N, N)
    valid = norms > 0
    first = multinomial(valid.to(torch.float64) + 1e-12, 1, generator)[:, 0]
    batch = torch.arange(B, device=X.device)
    captured = torch.zeros(B, N, dtype=X.dtype, device=X.device)
    bases = []
    center = first
    for k in range(K):
        if k > 0:
            worst = torch.where(valid, captured, torch.full_like(captured, float("inf")))
            center = worst.argmin(1)
        sim = torch.where(valid, affinity[batch, center], torch.full_like(captured, -1.0))
        neighbours = sim.topk(min(r, N), dim=1).indices  # (B, r), most similar first
        use = col_mask[:, k, : neighbours.shape[1]].to(X.dtype)  # only the first r_k neighbours
        pts = X[batch[:, None], neighbours] * use[..., None]  # (B, r, d)
        U = top_eigenvectors(pts.transpose(1, 2) @ pts, r)
        bases.append(U)
        captured = torch.maximum(captured, (X @ U).pow(2).sum(-1) / norms.clamp_min(torch.finfo(X.dtype).tiny) ** 2)
    return torch.stack(bases, 1)


def rank_mask(ranks: Sequence[int], r_max: int | None = None, device: torch.device | str = "cpu") -> Tensor:
    """Boolean ``(K, r_max)`` mask on ``device`` whose row ``k`` has ``ranks[k]`` leading ``True`` entries."""
    r_max = r_max or max(ranks)
    return torch.arange(r_max, device=device)[None, :] < torch.tensor(list(ranks), device=device)[:, None]


def k_subspaces(
    X: Tensor,
    K: int,
    r: int | Sequence[int],
    generator: torch.Generator | None = None,
    restarts: int = 10,
    max_iters: int = 100,
) -> tuple[list[Tensor], Tensor]:
    r"""Fit a union of ``K`` subspaces of ranks ``r`` to ``X`` ``(N, d)`` by K-subspaces (Bradley & Mangasarian 2000).

    Alternates assignment to the subspace with the largest projection :math:`\|U_k^\top x\|^2` and refitting each
    :math:`U_k` as the top-:math:`r_k` eigenvectors of its points' second-moment matrix, from ``restarts`` random
    orthonormal initializations run in parallel; keeps the restart with the largest objective
    :math:`\sum_i \max_k\|U_k^\top x^{(i)}\|^2`. Returns ``(bases, labels)``: ``K`` tensors ``(d, r_k)`` and ``(N,)``.
    """
    X = _check_data(X)
    K = check_positive_int(K, "K")
    if K > X.shape[0]:
        raise ValueError(f"K must be <= the number of points N = {X.shape[0]}, got K = {K}")
    ranks = _ranks(r, K, X.shape[1])
    restarts = check_positive_int(restarts, "restarts")
    max_iters = check_positive_int(max_iters, "max_iters")
    generator = check_generator(generator)
    U, labels, _ = k_subspaces_batched(X[None], rank_mask(ranks, device=X.device)[None], restarts, max_iters, generator)
    return [U[0, k, :, :rk] for k, rk in enumerate(ranks)], labels[0]
