r"""Closed-form denoisers :math:`D(x, t) = \mathbb E[x_0 \mid x_t = x]` for data laws we can write down.

- :class:`EmpiricalDenoiser`: the optimum of the denoising loss on a finite training set — it memorizes.
- :class:`GaussianDenoiser`: the optimum for a Gaussian fitted to the data — a linear map.

Both are called as ``den(x, t, schedule)`` and turned into a ``D(x, t)`` callable by ``den.denoiser(schedule)``.
"""

from __future__ import annotations

import math

import torch

from ._checks import batch_view, check_batch, check_tensor, check_time
from .schedules import Schedule
from .tweedie import safe_beta2

Tensor = torch.Tensor


class PosteriorMeanDenoiser:
    """Base class: subclasses set ``dim`` and implement ``_posterior_mean(x, alpha, beta2)`` on flat ``(B, dim)`` inputs."""

    dim: int

    def _posterior_mean(self, x: Tensor, alpha: Tensor, beta2: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _flat_inputs(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> tuple[Tensor, Tensor, Tensor]:
        x = check_batch(x, "x", self.dim)
        t = check_time(t, x)
        flat = x.reshape(x.shape[0], self.dim)
        return flat, batch_view(schedule.alpha(t), flat), batch_view(safe_beta2(schedule.beta(t)), flat)

    def posterior_mean(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        r""":math:`\mathbb E[x_0 \mid x_t = x]` for ``x`` of shape ``(B, *shape)`` with ``prod(shape) == dim``."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return self._posterior_mean(flat, alpha, beta2).reshape(x.shape)

    __call__ = posterior_mean

    def score(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        r"""Score :math:`\nabla\log p_t(x) = (\alpha_t \mathbb E[x_0\mid x_t = x] - x)/\beta_t^2` (Tweedie)."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return ((alpha * self._posterior_mean(flat, alpha, beta2) - flat) / beta2).reshape(x.shape)

    def denoiser(self, schedule: Schedule):
        """The callable ``D(x, t)`` for ``schedule``, as the samplers expect."""

        def D(x: Tensor, t: float | Tensor) -> Tensor:
            return self.posterior_mean(x, t, schedule)

        return D


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

    def posterior_weights(self, x: Tensor, t: float | Tensor, schedule: Schedule) -> Tensor:
        """The softmax weights ``(B, N)`` over training points."""
        flat, alpha, beta2 = self._flat_inputs(x, t, schedule)
        return torch.softmax(self._logits(flat, alpha, beta2), dim=1)


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
        scale = covariance.abs().max().clamp_min(1.0)
        if not torch.allclose(covariance, covariance.T, atol=1e-6 * float(scale)):
            raise ValueError("covariance must be symmetric")
        eigvals, eigvecs = torch.linalg.eigh(covariance)
        if bool(eigvals.min() < -1e-6 * scale):
            raise ValueError(f"covariance must be positive semi-definite, smallest eigenvalue {eigvals.min().item():g}")
        self.dim = d
        self.mean_ = mean.reshape(d)
        self.covariance_ = covariance
        # Eigenvalues at round-off level are exact zeros of a low-rank covariance: treat them as such, or the
        # gain alpha*lam/(alpha^2*lam + beta^2) would jump to 1/alpha as beta -> 0 along null directions.
        cutoff = d * torch.finfo(eigvals.dtype).eps * eigvals.abs().max()
        self.eigenvalues_ = torch.where(eigvals > cutoff, eigvals, torch.zeros_like(eigvals))
        self.eigenvectors_ = eigvecs

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
