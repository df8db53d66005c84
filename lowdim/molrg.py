r"""Mixture of low-rank Gaussians (MoLRG) and its closed-form posterior mean (Lemma 1 of the tutorial).

:math:`x_0 \sim \sum_k \pi_k\,\mathcal N(0, U_k U_k^\top)` with orthonormal :math:`U_k \in \mathbb R^{d\times r_k}`.
Then :math:`x_t \mid k \sim \mathcal N(0, \alpha_t^2 U_kU_k^\top + \beta_t^2 I)` and

.. math::
    \mathbb E[x_0 \mid x_t] = \frac{\alpha_t}{\alpha_t^2+\beta_t^2}\sum_k w_k(x_t)\, U_kU_k^\top x_t,\qquad
    w_k \propto \pi_k \Big(\frac{\beta_t^2}{\alpha_t^2+\beta_t^2}\Big)^{r_k/2}
    \exp\big(\phi_t \|U_k^\top x_t\|^2\big),\quad \phi_t = \frac{\alpha_t^2}{2\beta_t^2(\alpha_t^2+\beta_t^2)}.

The rank factor cancels when all :math:`r_k` are equal, which gives the tutorial's form. Weights are a
softmax of logits (log-sum-exp), so they stay finite for tiny :math:`\beta_t` and huge :math:`\|x_t\|`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._checks import check_generator, check_mixing_weights, check_positive_int, check_tensor
from ._random import multinomial, randn
from .denoisers import GaussianMixtureDenoiser, PosteriorMeanDenoiser
from .schedules import Schedule
from .subspaces import k_subspaces, orthonormal_columns, top_eigenvectors

Tensor = torch.Tensor


def _orthonormality_tol(dtype: torch.dtype) -> float:
    return 1e-8 if dtype == torch.float64 else 1e-4


class MoLRG(PosteriorMeanDenoiser):
    r"""Mixture of low-rank Gaussians :math:`\sum_k \pi_k \mathcal N(0, U_kU_k^\top)`.

    ``bases``: a ``(K, d, r)`` tensor or a list of ``(d, r_k)`` tensors with orthonormal columns
    (ranks may differ); ``weights``: ``(K,)`` mixing weights :math:`\pi_k` summing to 1 (default uniform).
    Inputs ``x`` may be ``(B, d)`` or ``(B, *shape)`` with ``prod(shape) == d``.
    """

    def __init__(self, bases: Tensor | Sequence[Tensor], weights: Tensor | Sequence[float] | None = None) -> None:
        if isinstance(bases, torch.Tensor):
            bases = check_tensor(bases, "bases", min_dim=3)
            if bases.dim() != 3:
                raise ValueError(
                    f"bases must be a (K, d, r) tensor or a list of (d, r_k) tensors, got shape {tuple(bases.shape)}"
                )
            bases = list(bases.unbind(0))
        elif not isinstance(bases, (list, tuple)) or len(bases) == 0:
            raise TypeError("bases must be a (K, d, r) tensor or a non-empty list of (d, r_k) tensors")
        bases = [check_tensor(U, f"bases[{k}]", min_dim=2) for k, U in enumerate(bases)]
        d = bases[0].shape[0]
        for k, U in enumerate(bases):
            if U.dim() != 2 or U.shape[0] != d:
                raise ValueError(f"bases[{k}] must have shape ({d}, r_k), got {tuple(U.shape)}")
            r = U.shape[1]
            if not 1 <= r <= d:
                raise ValueError(f"bases[{k}] must have 1 <= r_k <= d = {d} columns, got r_k = {r}")
            gram_error = (U.T @ U - torch.eye(r, dtype=U.dtype, device=U.device)).abs().max().item()
            if gram_error > _orthonormality_tol(U.dtype):
                raise ValueError(f"bases[{k}] must have orthonormal columns (max |U^T U - I| = {gram_error:.2e})")
        K = len(bases)
        weights = check_mixing_weights(weights, K, bases[0])
        self.dim, self.n_components = d, K
        self.ranks = [U.shape[1] for U in bases]
        self.weights = weights
        self.bases = bases
        # Zero-padded stack (K, d, r_max): zero columns change neither U^T x norms nor U U^T x.
        r_max = max(self.ranks)
        self._stacked = torch.zeros(K, d, r_max, dtype=bases[0].dtype, device=bases[0].device)
        for k, U in enumerate(bases):
            self._stacked[k, :, : U.shape[1]] = U

    def _projections(self, x: Tensor) -> Tensor:
        r"""Coefficients :math:`U_k^\top x`, shape ``(B, K, r_max)``."""
        return torch.einsum("bd,kdr->bkr", x, self._stacked.to(x))

    def _logits(self, coeffs: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        snr_total = alpha**2 + beta2
        phi = alpha**2 / (2 * beta2 * snr_total)
        ranks = torch.tensor(self.ranks, dtype=coeffs.dtype, device=coeffs.device)
        return (
            torch.log(self.weights.to(coeffs)) + 0.5 * ranks * torch.log(beta2 / snr_total) + phi * (coeffs**2).sum(-1)
        )

    def _posterior_mean(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        coeffs = self._projections(x)
        w = torch.softmax(self._logits(coeffs, alpha, beta2), dim=1)
        mixed = torch.einsum("bk,bkr,kdr->bd", w, coeffs, self._stacked.to(x))
        return alpha / (alpha**2 + beta2) * mixed

    def _jacobian(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        # D = c sum_k w_k p_k with p_k = U_k a_k, a_k = U_k^T x, c = alpha/(alpha^2 + beta^2), grad logit_k = 2 phi p_k:
        # J = c [sum_k w_k U_k U_k^T + 2 phi (sum_k w_k p_k p_k^T - pbar pbar^T)], symmetric. All of it lies in the
        # span of U = [U_1 ... U_K] (d x Kr): J = c U M U^T with the small Kr x Kr middle
        # M = diag(w_k I_r) + 2 phi (blockdiag(w_k a_k a_k^T) - (w a)(w a)^T), so forming J costs one d x Kr x d product.
        a, b2 = alpha[..., 0], beta2[..., 0]
        stacked = self._stacked.to(x)  # (K, d, r), zero columns past each rank change nothing
        K, d, r = stacked.shape
        coeffs = self._projections(x)  # (B, K, r)
        w = torch.softmax(self._logits(coeffs, a, b2), dim=1)
        weighted = (w[..., None] * coeffs).reshape(len(x), K * r)
        blocks = torch.einsum("bk,bkr,bks,kl->bkrls", w, coeffs, coeffs, torch.eye(K, dtype=x.dtype, device=x.device))
        spread = blocks.reshape(len(x), K * r, K * r) - weighted[:, :, None] * weighted[:, None, :]
        phi = a**2 / (2 * b2 * (a**2 + b2))
        middle = torch.diag_embed(w.repeat_interleave(r, dim=1)) + 2 * phi[..., None] * spread
        U = stacked.transpose(0, 1).reshape(d, K * r)
        return (a / (a**2 + b2))[..., None] * ((U @ middle) @ U.T)

    def posterior_weights(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        r"""Posterior component probabilities :math:`w_k(x) = P(k \mid x_t = x)`, shape ``(B, K)``."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return torch.softmax(self._logits(self._projections(flat), alpha, beta2), dim=1)

    def log_prob(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        r"""Log-density :math:`\log p_t(x)` of :math:`x_t`, shape ``(B,)`` (for :math:`t > 0`)."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        coeffs = self._projections(flat)
        d = self.dim
        per_component = (
            self._logits(coeffs, alpha, beta2)
            - 0.5 * d * torch.log(2 * math.pi * beta2)
            - (flat**2).sum(1, keepdim=True) / (2 * beta2)
        )
        return torch.logsumexp(per_component, dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        r"""Draw ``n`` points :math:`x_0 = U_k a`, :math:`k\sim\pi`, :math:`a\sim\mathcal N(0, I_{r_k})`.

        Returns ``(x, labels)`` with shapes ``(n, d)`` and ``(n,)``.
        """
        n = check_positive_int(n, "n")
        generator = check_generator(generator)
        device = self._stacked.device
        labels = multinomial(self.weights.double(), n, generator, replacement=True)
        r_max = self._stacked.shape[2]
        a = randn((n, r_max), generator, self._stacked.dtype, "cpu")
        mask = torch.arange(r_max) < torch.tensor(self.ranks)[labels.cpu()].unsqueeze(1)
        a = (a * mask).to(device)
        x = torch.einsum("ndr,nr->nd", self._stacked[labels], a)
        return x, labels

    def __repr__(self) -> str:
        return f"MoLRG(d={self.dim}, K={self.n_components}, ranks={self.ranks})"


def random_molrg(
    d: int,
    K: int,
    r: int | Sequence[int],
    generator: torch.Generator | None = None,
    weights: Tensor | Sequence[float] | None = None,
    dtype: torch.dtype | None = None,
) -> MoLRG:
    """A MoLRG whose ``K`` subspaces of ranks ``r`` (an int or ``K`` ints) are mutually orthogonal and uniformly
    random (QR of a Gaussian ``d x sum(r)`` matrix); needs ``sum(r) <= d``."""
    d = check_positive_int(d, "d")
    K = check_positive_int(K, "K")
    ranks = [r] * K if isinstance(r, int) else list(r)
    if len(ranks) != K:
        raise ValueError(f"r must be an int or a list of K = {K} ints, got {r}")
    for rk in ranks:
        check_positive_int(rk, "r")
    if sum(ranks) > d:
        raise ValueError(
            f"r must satisfy sum(r) <= d for mutually orthogonal subspaces, got sum(r) = {sum(ranks)} > d = {d}"
        )
    generator = check_generator(generator)
    G = randn((d, sum(ranks)), generator, torch.float64, "cpu")
    Q = orthonormal_columns(G)
    bases = list(Q.to(dtype or torch.get_default_dtype()).split(ranks, dim=1))
    return MoLRG([U.contiguous() for U in bases], weights)


def fit_molrg_denoiser(
    X: Tensor,
    r: int,
    K: int | None = None,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
    restarts: int = 10,
    center: bool = False,
    floor: bool = False,
) -> GaussianMixtureDenoiser:
    r"""Fit a MoLRG with per-direction variances, :math:`\sum_k \pi_k\mathcal N(\mu_k, U_k\Lambda_kU_k^\top)`, to data
    ``X`` ``(N, *shape)`` and return its exact denoiser (a :class:`~lowdim.denoisers.GaussianMixtureDenoiser`).

    The clusters :math:`C_k` are the classes in ``labels`` ``(N,)`` when given (supervised: one component per
    class), otherwise the ``K`` clusters found by :func:`~lowdim.subspaces.k_subspaces` (unsupervised; on the
    globally centred data when ``center``). For each cluster, :math:`U_k, \Lambda_k` are the top-``r`` eigenvectors
    and eigenvalues of its second-moment matrix :math:`\frac1{|C_k|}\sum_{i\in C_k}(x^{(i)}-\mu_k)(x^{(i)}-\mu_k)^\top`
    and :math:`\pi_k = |C_k|/N`. By default :math:`\mu_k = 0`, the MoLRG of Lemma 1 (subspaces through the
    origin); ``center=True`` uses the cluster means (affine subspaces). ``floor=True`` adds the mean variance
    :math:`s_k^2` of the discarded directions isotropically, :math:`\Sigma_k = U_k(\Lambda_k - s_k^2)U_k^\top +
    s_k^2 I` (a mixture of probabilistic PCA models, full rank). Empty clusters are dropped. The fitted labels are
    stored as ``labels_``.
    """
    X = check_tensor(X, "X", min_dim=2)
    flat = X.reshape(X.shape[0], -1)
    N, d = flat.shape
    r = check_positive_int(r, "r")
    if r > d:
        raise ValueError(f"r must be <= d = {d}, got {r}")
    if labels is None:
        if K is None:
            raise ValueError("K must be given when labels is None (unsupervised fit by k_subspaces)")
        shift = flat.mean(0) if center else torch.zeros_like(flat[0])
        _, labels = k_subspaces(flat - shift, K, r, generator=generator, restarts=restarts)
    elif not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise TypeError("labels must be an integer tensor")
    elif labels.shape != (N,):
        raise ValueError(f"labels must have shape ({N},), got {tuple(labels.shape)}")
    means, covariances, weights = [], [], []
    for k in torch.unique(labels):
        pts = flat[labels == k]
        mu = pts.mean(0) if center else torch.zeros_like(pts[0])
        C = (pts - mu).T @ (pts - mu) / len(pts)
        U, lam = top_eigenvectors(C, r, values=True)
        s2 = ((torch.trace(C) - lam.sum()) / (d - r)).clamp_min(0) if floor and r < d else C.new_zeros(())
        cov = (U * (lam - s2)) @ U.T + s2 * torch.eye(d, dtype=flat.dtype, device=flat.device)
        means.append(mu)
        covariances.append(0.5 * (cov + cov.T))
        weights.append(len(pts) / N)
    weights = torch.tensor(weights, dtype=flat.dtype, device=flat.device)
    denoiser = GaussianMixtureDenoiser(torch.stack(means), torch.stack(covariances), weights)
    denoiser.labels_ = labels
    return denoiser
