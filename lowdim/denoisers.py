r"""Closed-form denoisers :math:`D(x, t) = \mathbb E[x_0 \mid x_t = x]` for data laws we can write down.

- :class:`EmpiricalDenoiser`: the optimum of the denoising loss on a finite training set — it memorizes.
- :class:`GaussianDenoiser`: the optimum for a Gaussian fitted to the data — a linear map.
- :class:`GaussianMixtureDenoiser`: the optimum for a mixture of Gaussians with arbitrary (possibly low-rank)
  covariances — MoLRG with per-direction variances and means; :class:`~lowdim.molrg.MoLRG` is a special case.

Each is a data law with its posterior mean ``den.posterior_mean(x, t, schedule)``; ``den.denoiser(schedule)`` is
the denoiser ``D(x, t)`` the samplers and the Jacobian kernel take (a :class:`ScheduledDenoiser`).
:func:`denoising_mse` and :func:`denoiser_agreement` measure a denoiser against clean data and against another
denoiser across noise levels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import batch_view, check_batch, check_callable, check_mixing_weights, check_tensor, check_time
from ._random import randn
from .schedules import Schedule
from .tweedie import safe_beta2

Tensor = torch.Tensor


class PosteriorMeanDenoiser:
    """Base class: subclasses set ``dim`` and implement ``_posterior_mean(x, alpha, beta2)`` on flat ``(B, dim)`` inputs."""

    dim: int

    def _posterior_mean(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _jacobian(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        """Closed-form Jacobian ``(B, dim, dim)`` on flat inputs; subclasses that know it override this."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form Jacobian")

    @classmethod
    def has_closed_form_jacobian(cls) -> bool:
        return cls._jacobian is not PosteriorMeanDenoiser._jacobian

    def posterior_mean_jacobian(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        r"""The Jacobian :math:`\partial\,\mathbb E[x_0\mid x_t = x]/\partial x`, ``(B, dim, dim)``, in closed form.
        (By Tweedie it equals :math:`\operatorname{Cov}[x_0 \mid x_t = x]\,\alpha_t/\beta_t^2`: symmetric.)"""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return self._jacobian(flat, alpha[..., None], beta2[..., None])

    def _flat_inputs(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> tuple[Tensor, Tensor, Tensor]:
        x = check_batch(x, "x", self.dim)
        t = check_time(t, x)
        flat = x.reshape(x.shape[0], self.dim)
        return flat, batch_view(schedule.alpha(t), flat), batch_view(safe_beta2(schedule.beta(t)), flat)

    def posterior_mean(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        r""":math:`\mathbb E[x_0 \mid x_t = x]` for ``x`` of shape ``(B, *shape)`` with ``prod(shape) == dim``."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return self._posterior_mean(flat, alpha, beta2).reshape(x.shape)

    def score(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        r"""Score :math:`\nabla\log p_t(x) = (\alpha_t \mathbb E[x_0\mid x_t = x] - x)/\beta_t^2` (Tweedie)."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return ((alpha * self._posterior_mean(flat, alpha, beta2) - flat) / beta2).reshape(x.shape)

    def denoiser(self, schedule: Schedule) -> ScheduledDenoiser:
        """The denoiser ``D(x, t)`` of this law under ``schedule``: a :class:`ScheduledDenoiser`, with a closed-form
        ``jacobian(x, t)`` when the law has one (:class:`ClosedFormDenoiser`)."""
        kind = ClosedFormDenoiser if self.has_closed_form_jacobian() else ScheduledDenoiser
        return kind(self, schedule)


class ScheduledDenoiser:
    r"""The denoiser :math:`D(x, t) = \mathbb E[x_0 \mid x_t = x]` of a data law ``law`` under ``schedule``:
    ``D(x, t)`` for ``x`` ``(B, *shape)`` and ``t`` a float or ``(B,)``."""

    def __init__(self, law: PosteriorMeanDenoiser, schedule: Schedule) -> None:
        self.law, self.schedule = law, schedule

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        return self.law.posterior_mean(x, t, self.schedule)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.law).__name__}, {type(self.schedule).__name__})"


class ClosedFormDenoiser(ScheduledDenoiser):
    """A :class:`ScheduledDenoiser` whose Jacobian is known in closed form: it follows
    :class:`~lowdim.jacobian.ClosedFormJacobian`, so the Jacobian kernel asks it instead of differentiating."""

    def jacobian(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The Jacobian ``(B, d, d)`` (:meth:`PosteriorMeanDenoiser.posterior_mean_jacobian`)."""
        return self.law.posterior_mean_jacobian(x, t, self.schedule)


class EmpiricalDenoiser(PosteriorMeanDenoiser):
    r"""Optimal denoiser for the empirical law :math:`\frac1N\sum_i \delta_{x^{(i)}}` of ``samples`` ``(N, *shape)``.

    .. math:: D(x, t) = \sum_i w_i(x)\, x^{(i)}, \qquad
        w(x) = \operatorname{softmax}_i\Big(-\frac{\|x - \alpha_t x^{(i)}\|^2}{2\beta_t^2}\Big).

    As :math:`t \to 0` the weights become one-hot, so the PF-ODE lands on a training point.
    """

    def __init__(self, samples: Tensor) -> None:
        samples = check_batch(samples, "samples")
        self.dim = math.prod(samples.shape[1:])
        self.samples = samples
        self._flat = samples.reshape(samples.shape[0], self.dim)
        self._sq_norms = (self._flat**2).sum(1)

    def _logits(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        # -||x - a x_i||^2 / (2 b^2) up to a per-row constant: (a <x, x_i> - a^2 ||x_i||^2 / 2) / b^2.
        X, sq = self._flat.to(x), self._sq_norms.to(x)
        return (alpha * (x @ X.T) - 0.5 * alpha**2 * sq) / beta2

    def _posterior_mean(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        return torch.softmax(self._logits(x, alpha, beta2), dim=1) @ self._flat.to(x)

    def _jacobian(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        # logits' gradient is alpha y_i / beta^2, so J = (alpha / beta^2) (sum_i w_i y_i y_i^T - ybar ybar^T)
        w = torch.softmax(self._logits(x, alpha[..., 0], beta2[..., 0]), dim=1)
        Y = self._flat.to(x)
        mean = w @ Y
        second = torch.einsum("bn,nd,ne->bde", w, Y, Y)
        return alpha / beta2 * (second - mean[:, :, None] * mean[:, None, :])

    def posterior_weights(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        """The softmax weights ``(B, N)`` over training points."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return torch.softmax(self._logits(flat, alpha, beta2), dim=1)


def psd_eigh(covariance: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Eigenvalues and eigenvectors of symmetric positive semi-definite matrices ``(..., d, d)``; eigenvalues at
    round-off level become exact zeros. Raises ``ValueError`` naming ``name`` if not symmetric PSD."""
    scale = covariance.abs().amax((-2, -1), keepdim=True).clamp_min(1.0)
    if not bool(((covariance - covariance.transpose(-2, -1)).abs() <= 1e-6 * scale).all()):
        raise ValueError(f"{name} must be symmetric")
    eigvals, eigvecs = torch.linalg.eigh(covariance)
    if bool((eigvals < -1e-6 * scale[..., 0]).any()):
        raise ValueError(f"{name} must be positive semi-definite, smallest eigenvalue {eigvals.min().item():g}")
    # Eigenvalues at round-off level are exact zeros of a low-rank covariance: treat them as such, or the
    # gain alpha*lam/(alpha^2*lam + beta^2) would jump to 1/alpha as beta -> 0 along null directions.
    d = covariance.shape[-1]
    cutoff = d * torch.finfo(eigvals.dtype).eps * eigvals.abs().amax(-1, keepdim=True)
    return torch.where(eigvals > cutoff, eigvals, torch.zeros_like(eigvals)), eigvecs


class GaussianDenoiser(PosteriorMeanDenoiser):
    r"""Optimal denoiser for :math:`x_0 \sim \mathcal N(\mu, \Sigma)`, a linear map of :math:`x_t`.

    .. math:: D(x, t) = \mu + \alpha_t\Sigma(\alpha_t^2\Sigma + \beta_t^2 I)^{-1}(x - \alpha_t\mu)
        = \mu + V \operatorname{diag}\Big(\frac{\alpha_t\lambda_i}{\alpha_t^2\lambda_i + \beta_t^2}\Big) V^\top (x - \alpha_t\mu),

    with :math:`\Sigma = V\operatorname{diag}(\lambda)V^\top`. ``mean``: ``(d,)``; ``covariance``: ``(d, d)``,
    symmetric positive semi-definite. Build one from data with :meth:`fit`.
    """

    def __init__(self, mean: Tensor, covariance: Tensor) -> None:
        mean = check_tensor(mean, "mean")
        covariance = check_tensor(covariance, "covariance", min_dim=2)
        d = mean.numel()
        if covariance.shape != (d, d):
            raise ValueError(f"covariance must have shape ({d}, {d}) to match mean, got {tuple(covariance.shape)}")
        self.dim = d
        self.mean_ = mean.reshape(d)
        self.covariance_ = covariance
        self.eigenvalues_, self.eigenvectors_ = psd_eigh(covariance, "covariance")

    @classmethod
    def fit(cls, samples: Tensor, shrinkage: float = 0.0) -> GaussianDenoiser:
        r"""Fit mean and covariance :math:`\frac1N\sum_i (x^{(i)}-\mu)(x^{(i)}-\mu)^\top + \text{shrinkage}\cdot I`
        to ``samples`` ``(N, *shape)``, ``N >= 2``."""
        samples = check_batch(samples, "samples")
        if samples.shape[0] < 2:
            raise ValueError(f"samples must hold at least 2 points, got {samples.shape[0]}")
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
        X = samples.reshape(samples.shape[0], -1)
        mean = X.mean(0)
        centred = X - mean
        cov = centred.T @ centred / X.shape[0]
        cov = 0.5 * (cov + cov.T) + shrinkage * torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
        return cls(mean, cov)

    def _posterior_mean(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        mu, lam, V = self.mean_.to(x), self.eigenvalues_.to(x), self.eigenvectors_.to(x)
        gain = alpha * lam / (alpha**2 * lam + beta2)  # (B, d) per eigen-direction
        return mu + ((x - alpha * mu) @ V * gain) @ V.T

    def _jacobian(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        lam, V = self.eigenvalues_.to(x), self.eigenvectors_.to(x)
        gain = alpha[..., 0] * lam / (alpha[..., 0] ** 2 * lam + beta2[..., 0])  # (B, d)
        return torch.einsum("di,bi,ei->bde", V, gain, V)


class GaussianMixtureDenoiser(PosteriorMeanDenoiser):
    r"""Optimal denoiser for :math:`x_0 \sim \sum_k \pi_k\,\mathcal N(\mu_k, \Sigma_k)`, covariances possibly singular.

    Given component :math:`k`, :math:`x_t \sim \mathcal N(\alpha_t\mu_k, \alpha_t^2\Sigma_k + \beta_t^2 I)` and the
    posterior mean is the Gaussian one; they mix with the posterior component probabilities:

    .. math:: D(x, t) = \sum_k w_k(x)\Big[\mu_k + V_k\operatorname{diag}\Big(\frac{\alpha_t\lambda_{ki}}
        {\alpha_t^2\lambda_{ki}+\beta_t^2}\Big)c_k\Big],\qquad c_k = V_k^\top(x - \alpha_t\mu_k),

    .. math:: w = \operatorname{softmax}_k\Big(\log\pi_k - \tfrac12\sum_i\log(\alpha_t^2\lambda_{ki}+\beta_t^2)
        - \tfrac12\sum_i \frac{c_{ki}^2}{\alpha_t^2\lambda_{ki}+\beta_t^2}\Big),

    with :math:`\Sigma_k = V_k\operatorname{diag}(\lambda_k)V_k^\top`. ``means`` ``(K, d)``, ``covariances``
    ``(K, d, d)`` symmetric PSD, ``weights`` ``(K,)`` positive summing to 1 (default uniform). With zero means and
    :math:`\Sigma_k = U_kU_k^\top` this is Lemma 1 (:class:`~lowdim.molrg.MoLRG`); with ``K = 1`` it is
    :class:`GaussianDenoiser`.
    """

    def __init__(self, means: Tensor, covariances: Tensor, weights: Tensor | None = None) -> None:
        means = check_tensor(means, "means", min_dim=2)
        covariances = check_tensor(covariances, "covariances", min_dim=3)
        if means.dim() != 2:
            raise ValueError(f"means must have shape (K, d), got {tuple(means.shape)}")
        K, d = means.shape
        if covariances.shape != (K, d, d):
            raise ValueError(
                f"covariances must have shape ({K}, {d}, {d}) to match means, got {tuple(covariances.shape)}"
            )
        weights = check_mixing_weights(weights, K, means)
        self.dim, self.n_components = d, K
        self.means_, self.covariances_, self.weights_ = means, covariances, weights
        self.eigenvalues_, self.eigenvectors_ = psd_eigh(covariances, "covariances")

    def _components(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> tuple[Tensor, Tensor]:
        """Logits ``(B, K)`` of the posterior component probabilities and the coordinates ``c`` ``(B, K, d)``."""
        mu, lam, V = self.means_.to(x), self.eigenvalues_.to(x), self.eigenvectors_.to(x)
        c = torch.einsum("bkd,kde->bke", x[:, None] - alpha[:, None] * mu, V)
        var = alpha[:, None] ** 2 * lam + beta2[:, None]  # (B, K, d): variances of x_t along V_k given k
        logits = torch.log(self.weights_.to(x)) - 0.5 * (torch.log(var) + c**2 / var).sum(-1)
        return logits, c

    def _posterior_mean(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:
        logits, c = self._components(x, alpha, beta2)
        lam, V = self.eigenvalues_.to(x), self.eigenvectors_.to(x)
        gain = alpha[:, None] * lam / (alpha[:, None] ** 2 * lam + beta2[:, None])
        means = self.means_.to(x) + torch.einsum("bke,kde->bkd", gain * c, V)  # (B, K, d)
        return torch.einsum("bk,bkd->bd", torch.softmax(logits, dim=1), means)

    def posterior_weights(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        """Posterior component probabilities ``(B, K)``."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return torch.softmax(self._components(flat, alpha, beta2)[0], dim=1)

    def log_prob(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        """Log-density ``(B,)`` of :math:`x_t` (for :math:`t > 0`)."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        logits, _ = self._components(flat, alpha, beta2)
        return torch.logsumexp(logits, dim=1) - 0.5 * self.dim * math.log(2 * math.pi)


def denoising_mse(
    denoiser: PosteriorMeanDenoiser,
    x0: Tensor,
    times: Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Mean squared error per item :math:`\frac1B\sum_b\|D(\alpha_t x_0^{(b)} + \beta_t\varepsilon_b, t) - x_0^{(b)}\|^2`
    at each of ``times`` ``(T,)``, for clean items ``x0`` ``(B, *shape)``; returns ``(T,)``.

    The same noise draws :math:`\varepsilon_b` are used at every time (common random numbers), so curves of
    different denoisers called with equal ``generator`` seeds are compared on identical noisy inputs.
    """
    x0 = check_batch(x0, "x0", denoiser.dim)
    times = check_tensor(torch.as_tensor(times, dtype=x0.dtype), "times")
    eps = randn(x0.shape, generator, x0.dtype, x0.device)
    out = []
    for t in times.reshape(-1):
        a, b = schedule.alpha(t), schedule.beta(t)
        err = denoiser.posterior_mean(a * x0 + b * eps, float(t), schedule) - x0
        out.append(err.reshape(len(x0), -1).pow(2).sum(1).mean())
    return torch.stack(out)


def denoiser_agreement(
    D1: Callable[[Tensor, Tensor], Tensor],
    D2: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    times: Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""How close two denoisers are on the noisy inputs :math:`x_t = \alpha_t x_0 + \beta_t\varepsilon` at each of
    ``times`` ``(T,)``: the mean cosine similarity of their outputs and the relative MSE
    :math:`\mathbb E\|D_1 - D_2\|^2 / \mathbb E\|D_2\|^2`, both ``(T,)``. ``D1`` and ``D2`` are ``D(x, t)`` callables;
    the same noise draws serve every time (common random numbers). Li et al. (2024) compare a trained network
    (``D1``) with the linear Gaussian denoiser of its training set (``D2``) this way."""
    check_callable(D1, "D1")
    check_callable(D2, "D2")
    x0 = check_batch(x0, "x0")
    times = check_tensor(torch.as_tensor(times, dtype=x0.dtype), "times")
    eps = randn(x0.shape, generator, x0.dtype, x0.device)
    cosines, errors = [], []
    with torch.no_grad():
        for t in times.reshape(-1):
            x_t = schedule.alpha(t) * x0 + schedule.beta(t) * eps
            tt = t.expand(len(x0))
            a, b = D1(x_t, tt).reshape(len(x0), -1), D2(x_t, tt).reshape(len(x0), -1)
            cosines.append(torch.nn.functional.cosine_similarity(a, b, dim=1).mean())
            errors.append((a - b).pow(2).sum(1).mean() / b.pow(2).sum(1).mean())
    return torch.stack(cosines), torch.stack(errors)
