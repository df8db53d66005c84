r"""The MoLRG-parameterized denoiser of the tutorial, with learnable bases.

.. math:: x_\theta(x_t, t) = \frac{\alpha_t}{\alpha_t^2+\beta_t^2}\sum_{k=1}^K w_k(\theta; x_t)\,U_kU_k^\top x_t,
    \qquad w = \operatorname{softmax}_k\big(\phi_t\|U_k^\top x_t\|^2\big),\quad
    \phi_t = \frac{\alpha_t^2}{2\beta_t^2(\alpha_t^2+\beta_t^2)},

the posterior mean of Lemma 1 with equal weights and ranks, where :math:`\theta = (U_1,\dots,U_K)` is learned.
Training it on MoLRG data is PCA for :math:`K = 1` and subspace clustering for :math:`K > 1`
(Wang et al. 2024). The bases stay orthonormal by retraction: after each optimizer step, :meth:`LowRankDAE.constrain_`
replaces every :math:`U_k` by the Q factor of its QR decomposition (projected Adam). Differentiating through the
QR instead works too, but its backward pass (batched triangular solves) is 20× slower on a CPU.

One module can hold a stack of ``n_models`` independent DAEs (parameters ``(n_models, K, d, r)``), which the
phase-transition sweeps train at once: the loss is the *sum* of the models' losses, so each model's gradient —
and, Adam being elementwise, each model's update — is what it would be if trained alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_generator, check_positive_int, check_tensor, check_time
from ._random import rand, randn
from .schedules import VP, Schedule
from .subspaces import orthonormal_columns
from .train import optimize
from .tweedie import safe_beta2

Tensor = torch.Tensor


class LowRankDAE(nn.Module):
    """MoLRG-parameterized DAE ``x_theta(x, t)`` for ``x`` ``(B, d)``, or ``(n_models, B, d)`` for a stack of models.

    ``generator`` seeds the random initialization of the bases (uniform on the Stiefel manifold).
    """

    def __init__(
        self,
        d: int,
        K: int,
        r: int,
        schedule: Schedule | None = None,
        n_models: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.d, self.K, self.r = check_positive_int(d, "d"), check_positive_int(K, "K"), check_positive_int(r, "r")
        if r > d:
            raise ValueError(f"r must be <= d, got r = {r} > d = {d}")
        self.n_models = None if n_models is None else check_positive_int(n_models, "n_models")
        self.schedule = schedule or VP()
        shape = (K, d, r) if n_models is None else (n_models, K, d, r)
        G = randn(shape, check_generator(generator), dtype or torch.get_default_dtype(), "cpu")
        self.U = nn.Parameter(orthonormal_columns(G))

    @property
    def bases(self) -> Tensor:
        """Orthonormal bases ``(K, d, r)`` (or ``(n_models, K, d, r)``), detached."""
        return self.U.detach()

    @torch.no_grad()
    def constrain_(self) -> None:
        """Retract the bases onto orthonormal matrices (called after each optimizer step)."""
        self.U.copy_(orthonormal_columns(self.U))

    def forward(self, x: Tensor, t: float | Tensor) -> Tensor:
        stacked = self.n_models is not None
        x = check_tensor(x, "x", min_dim=3 if stacked else 2, finite=False)  # values: checked at the entry points
        expected = (self.n_models, x.shape[1], self.d) if stacked else (x.shape[0], self.d)
        if tuple(x.shape) != expected:
            raise ValueError(
                f"x must have shape {'(n_models, B, d)' if stacked else '(B, d)'} = {expected}, got {tuple(x.shape)}"
            )
        xs = x if stacked else x[None]
        U = self.U if stacked else self.U[None]
        if isinstance(t, torch.Tensor) and t.dim() == 2:  # per-model, per-sample times (n_models, B)
            t = t.to(x)
        else:
            t = check_time(t, xs[0], values=not isinstance(t, torch.Tensor)).expand(xs.shape[0], -1)
        alpha = self.schedule.alpha(t)[..., None]
        beta2 = safe_beta2(self.schedule.beta(t))[..., None]
        coeffs = torch.einsum("mbd,mkdr->mbkr", xs, U)  # U_k^T x
        phi = alpha**2 / (2 * beta2 * (alpha**2 + beta2))
        w = torch.softmax(phi * coeffs.pow(2).sum(-1), dim=-1)  # (m, B, K)
        out = alpha / (alpha**2 + beta2) * torch.einsum("mbk,mbkr,mkdr->mbd", w, coeffs, U)
        return out if stacked else out[0]


# Low noise: the clustering signal is strongest there (nearly hard weights w_k) and the per-sample gradient of the
# noise-only term ||c U U^T beta eps||^2, whose expectation does not depend on U, is smallest (it scales like sigma^2);
# at sigma ~ 0.1 it drowns data directions of small energy (measured with full-space noise, before dae_loss drew it
# in the span of the bases: PCA agreement 80 % -> 94 % of cells).
SIGMA_RANGE = (0.002, 0.02)


def dae_loss(
    model: LowRankDAE,
    x0: Tensor,
    generator: torch.Generator | None = None,
    draws: int = 4,
    sigma_range: tuple[float, float] = SIGMA_RANGE,
    per_model: bool = False,
) -> Tensor:
    r"""Monte-Carlo denoising loss :math:`\mathbb E\|x_\theta(\alpha_t x_0 + \beta_t\varepsilon, t) - x_0\|^2`, summed over
    models and averaged over points.

    ``x0``: ``(N, d)``, or ``(n_models, N, d)`` for a stack (zero rows are padding and are skipped). Each point gets
    ``draws`` noise levels with :math:`\log\sigma_t` uniform on ``sigma_range`` and one noise vector each. Low
    noise levels carry the clustering signal (the weights :math:`w_k` are nearly hard there) and the least
    gradient noise; every level has the same minimizer. ``per_model=True`` returns the ``(n_models,)`` losses.

    The noise is drawn only inside :math:`S = \operatorname{span}(U_1,\dots,U_K)` (at the current bases):
    :math:`\varepsilon_\parallel = Qz`, :math:`z\sim\mathcal N(0, I_{Kr})`, with :math:`Q` an orthonormal basis of a
    space containing :math:`S`. The component :math:`\varepsilon_\perp` orthogonal to it leaves the loss value
    unchanged (:math:`U_k^\top\varepsilon_\perp = 0`) and enters the gradient only through the term
    :math:`\beta_t\varepsilon_\perp g^\top`, with :math:`g` a function of :math:`\varepsilon_\parallel` alone; it is
    independent of :math:`\varepsilon_\parallel` with mean zero, so dropping it (Rao–Blackwellization) keeps loss and
    gradient unbiased and removes pure noise from the gradient. Every quantity is then computed in the
    :math:`Kr`-dimensional coordinates of :math:`Q` (see ``projected_loss``), not in :math:`\mathbb R^d`.
    """
    stacked = model.n_models is not None
    xs = check_tensor(x0, "x0", min_dim=3 if stacked else 2)
    xs = xs if stacked else xs[None]
    draws = check_positive_int(draws, "draws")
    m, N, _ = xs.shape
    lo, hi = math.log(sigma_range[0]), math.log(sigma_range[1])
    log_sigma = lo + (hi - lo) * rand((m, N, draws), generator, xs.dtype, xs.device)
    t = model.schedule.t_from_sigma(log_sigma.exp())
    z = randn((m, N, draws, noise_rank(model)), generator, xs.dtype, xs.device)
    losses = projected_loss(model, xs, t, z)
    return losses if per_model else losses.sum()


def noise_rank(model: LowRankDAE) -> int:
    """Dimension of the noise space of :func:`dae_loss`: ``min(K r, d)``."""
    return min(model.K * model.r, model.d)


def noise_basis(model: LowRankDAE) -> Tensor:
    r"""Orthonormal ``Q`` ``(m, d, min(K r, d))`` whose span contains every basis of each model (detached).

    A plain Householder QR of :math:`[U_1,\dots,U_K]`: its ``Q`` spans the columns even when bases coincide.
    """
    U = model.bases if model.n_models is not None else model.bases[None]
    m, K, d, r = U.shape
    if K * r >= d:
        return torch.eye(d, dtype=U.dtype, device=U.device).expand(m, d, d)
    return torch.linalg.qr(U.permute(0, 2, 1, 3).reshape(m, d, K * r))[0]


def projected_loss(model: LowRankDAE, x0: Tensor, t: Tensor, z: Tensor) -> Tensor:
    r"""Per-model denoising loss ``(m,)`` for points ``x0`` ``(m, N, d)``, times ``t`` ``(m, N, D)`` and noise
    coordinates ``z`` ``(m, N, D, s)`` (``D`` draws per point, noise :math:`\varepsilon = Qz` with ``Q`` from
    :func:`noise_basis`), averaged over draws and nonzero points.

    With :math:`a_k = U_k^\top x_t = \alpha a^0_k + \beta U_k^\top Q z` and :math:`v_k = c\,w_k a_k`,
    :math:`c = \alpha/(\alpha^2+\beta^2)`, the prediction is :math:`\sum_k U_k v_k \in \operatorname{span} Q`, so

    .. math:: \|x_\theta - x_0\|^2 = \big\|\textstyle\sum_k Q^\top U_k v_k - Q^\top x_0\big\|^2
        - 2\sum_k v_k^\top U_k^\top x_0^\perp + \|x_0^\perp\|^2,\qquad x_0^\perp = (I - QQ^\top)x_0 .

    The middle term is zero in value but not in gradient (moving :math:`U_k` tilts the prediction towards
    :math:`x_0^\perp`); written this way the value and the gradient equal those of the direct formula with
    :math:`\varepsilon = Qz` without forming any ``(m, N D, d)`` tensor and without cancellation.
    """
    U = model.U if model.n_models is not None else model.U[None]
    Q = noise_basis(model)
    a0 = torch.einsum("mnd,mkdr->mnkr", x0, U)
    x0_q = torch.einsum("mnd,mds->mns", x0, Q)
    x0_perp = x0 - torch.einsum("mns,mds->mnd", x0_q, Q)
    a_perp = torch.einsum("mnd,mkdr->mnkr", x0_perp, U)
    UQ = torch.einsum("mkdr,mds->mkrs", U, Q)  # Q^T U_k
    alpha = model.schedule.alpha(t)
    beta = model.schedule.beta(t)
    beta2 = safe_beta2(beta)
    noise = torch.einsum("mkrs,mnjs->mnjkr", UQ, z)  # U_k^T Q z
    coeffs = alpha[..., None, None] * a0[:, :, None] + beta[..., None, None] * noise
    phi = alpha**2 / (2 * beta2 * (alpha**2 + beta2))
    w = torch.softmax(phi[..., None] * coeffs.pow(2).sum(-1), dim=-1)  # (m, N, D, K)
    v = (alpha / (alpha**2 + beta2))[..., None, None] * w[..., None] * coeffs
    in_span = (torch.einsum("mnjkr,mkrs->mnjs", v, UQ) - x0_q[:, :, None]).pow(2).sum(-1)
    tilt = torch.einsum("mnjkr,mnkr->mnj", v, a_perp)
    err = (in_span - 2 * tilt + x0_perp.pow(2).sum(-1)[..., None]).mean(-1)  # (m, N)
    real = (x0.pow(2).sum(-1) > 0).to(x0.dtype)  # padding rows do not count
    return (err * real).sum(1) / real.sum(1).clamp_min(1)


def train_dae(
    model: LowRankDAE,
    data: Tensor,
    steps: int = 300,
    lr: float = 0.05,
    draws: int = 4,
    generator: torch.Generator | None = None,
    progress: bool = True,
    sigma_range: tuple[float, float] = SIGMA_RANGE,
) -> list[float]:
    """Minimize :func:`dae_loss` with all points of every data set in each step (the training loop
    :func:`~lowdim.train.optimize`: Adam with cosine decay to zero, since the Monte-Carlo gradient noise would
    otherwise leave an error floor of order ``lr``; the bases are retracted after every step); returns the loss per
    step."""
    check_tensor(data, "data", min_dim=2)
    generator = check_generator(generator)

    def loss() -> Tensor:
        return dae_loss(model, data, generator=generator, draws=draws, sigma_range=sigma_range)

    return optimize(model, loss, steps, lr, "cosine", progress=progress, desc="training DAE")
