r"""Noise schedules: the forward marginal :math:`x_t = \alpha_t x_0 + \beta_t \varepsilon` and its SDE.

For :math:`x_t = \alpha_t x_0 + \beta_t\varepsilon` the forward SDE :math:`dx = f(x, t)\,dt + g(t)\,dw` has

.. math::
    f(x, t) = \frac{d\log\alpha_t}{dt}\,x, \qquad
    g(t)^2 = \frac{d\beta_t^2}{dt} - 2\beta_t^2\,\frac{d\log\alpha_t}{dt}.

(The tutorial's footnote writes the right-hand side as :math:`g(t)`; it is :math:`g(t)^2`.)
Both schedules have :math:`\beta_0 = 0`, so :math:`x_0` is the clean data, and both expose the
noise-to-signal ratio :math:`\sigma_t = \beta_t/\alpha_t` and its inverse, which the samplers use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import check_positive

Tensor = torch.Tensor


def _as_tensor(t: float | Tensor) -> Tensor:
    return t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.get_default_dtype())


class Schedule:
    """Base class: subclasses define ``alpha``, ``beta``, ``dlog_alpha``, ``dbeta2`` and ``t_from_sigma``."""

    def alpha(self, t: float | Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def beta(self, t: float | Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def dlog_alpha(self, t: float | Tensor) -> Tensor:  # pragma: no cover - abstract
        r""":math:`d\log\alpha_t/dt`."""
        raise NotImplementedError

    def dbeta2(self, t: float | Tensor) -> Tensor:  # pragma: no cover - abstract
        r""":math:`d\beta_t^2/dt`."""
        raise NotImplementedError

    def t_from_sigma(self, sigma: float | Tensor) -> Tensor:  # pragma: no cover - abstract
        r"""The time at which :math:`\beta_t/\alpha_t = \sigma` (inverse of :meth:`sigma`)."""
        raise NotImplementedError

    def sigma(self, t: float | Tensor) -> Tensor:
        r"""Noise-to-signal ratio :math:`\sigma_t = \beta_t / \alpha_t`."""
        return self.beta(t) / self.alpha(t)

    def drift(self, x: Tensor, t: float | Tensor) -> Tensor:
        r"""Drift :math:`f(x, t) = (d\log\alpha_t/dt)\,x`; ``t`` a float or a ``(B,)`` tensor."""
        coeff = self.dlog_alpha(_as_tensor(t).to(x))
        if coeff.dim() == 1:
            coeff = coeff.reshape(-1, *([1] * (x.dim() - 1)))
        return coeff * x

    def diffusion(self, t: float | Tensor) -> Tensor:
        r"""Diffusion coefficient :math:`g(t) = \sqrt{d\beta_t^2/dt - 2\beta_t^2\, d\log\alpha_t/dt}`."""
        t = _as_tensor(t)
        g2 = self.dbeta2(t) - 2 * self.beta(t) ** 2 * self.dlog_alpha(t)
        return g2.clamp_min(0).sqrt()


@dataclass(frozen=True)
class VP(Schedule):
    r"""Variance-preserving schedule (DDPM; Song et al. 2021), :math:`\alpha_t^2 + \beta_t^2 = 1`.

    With :math:`b(t) = b_{\min} + (b_{\max} - b_{\min})\,t` and :math:`B(t) = \int_0^t b`,
    :math:`\alpha_t = e^{-B(t)/2}`, :math:`\beta_t = \sqrt{1 - e^{-B(t)}}`, :math:`f = -\tfrac12 b(t)\,x`
    and :math:`g(t)^2 = b(t)`.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self) -> None:
        check_positive(self.beta_min, "beta_min")
        check_positive(self.beta_max, "beta_max")
        if self.beta_max < self.beta_min:
            raise ValueError(f"beta_max must be >= beta_min, got {self.beta_max} < {self.beta_min}")

    def _b(self, t: Tensor) -> Tensor:
        return self.beta_min + (self.beta_max - self.beta_min) * t

    def _B(self, t: Tensor) -> Tensor:
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def alpha(self, t: float | Tensor) -> Tensor:
        return torch.exp(-0.5 * self._B(_as_tensor(t)))

    def beta(self, t: float | Tensor) -> Tensor:
        return torch.sqrt(-torch.expm1(-self._B(_as_tensor(t))))

    def sigma(self, t: float | Tensor) -> Tensor:
        return torch.sqrt(torch.expm1(self._B(_as_tensor(t))))

    def dlog_alpha(self, t: float | Tensor) -> Tensor:
        return -0.5 * self._b(_as_tensor(t))

    def dbeta2(self, t: float | Tensor) -> Tensor:
        t = _as_tensor(t)
        return self._b(t) * torch.exp(-self._B(t))

    def t_from_sigma(self, sigma: float | Tensor) -> Tensor:
        # Solve b_min t + (b_max - b_min) t^2 / 2 = log(1 + sigma^2) for t >= 0.
        B = torch.log1p(_as_tensor(sigma) ** 2)
        slope = self.beta_max - self.beta_min
        if slope == 0:
            return B / self.beta_min
        return 2 * B / (self.beta_min + torch.sqrt(self.beta_min**2 + 2 * slope * B))


@dataclass(frozen=True)
class VE(Schedule):
    r"""Variance-exploding schedule (NCSN; Song et al. 2021), :math:`\alpha_t = 1`.

    With :math:`s(t) = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t`, we set
    :math:`\beta_t^2 = s(t)^2 - \sigma_{\min}^2` so that :math:`\beta_0 = 0` and the forward SDE started at
    clean data has exactly these marginals; :math:`g(t)^2 = d s(t)^2/dt = 2\log(\sigma_{\max}/\sigma_{\min})\,s(t)^2`.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0

    def __post_init__(self) -> None:
        check_positive(self.sigma_min, "sigma_min")
        check_positive(self.sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max must be > sigma_min, got {self.sigma_max} <= {self.sigma_min}")

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def alpha(self, t: float | Tensor) -> Tensor:
        return torch.ones_like(_as_tensor(t))

    def beta(self, t: float | Tensor) -> Tensor:
        return self.sigma_min * torch.sqrt(torch.expm1(2 * self._log_ratio * _as_tensor(t)))

    def dlog_alpha(self, t: float | Tensor) -> Tensor:
        return torch.zeros_like(_as_tensor(t))

    def dbeta2(self, t: float | Tensor) -> Tensor:
        return 2 * self._log_ratio * self.sigma_min**2 * torch.exp(2 * self._log_ratio * _as_tensor(t))

    def t_from_sigma(self, sigma: float | Tensor) -> Tensor:
        return torch.log1p((_as_tensor(sigma) / self.sigma_min) ** 2) / (2 * self._log_ratio)
