r"""The curse of dimensionality as a covering problem: how many samples until every point has a close one.

An empirical distribution :math:`\frac1N\sum_i\delta_{x^{(i)}}` is :math:`\varepsilon`-close to the data law only if
(almost) every data point has a sample within :math:`\varepsilon`, i.e. the samples form an
:math:`\varepsilon`-cover of the support. For the unit cube :math:`[0,1]^d` in the sup-norm, a cover needs

.. math:: \Big(\frac{1}{2\varepsilon}\Big)^d \le \mathcal N(\varepsilon, [0,1]^d) \le
    \Big\lceil\frac{1}{2\varepsilon}\Big\rceil^d

balls (volume bound, and a grid), exponential in :math:`d`; for data on an :math:`r`-dimensional face it is the
same count with :math:`r` in place of :math:`d`. The typical nearest-sample distance tells the same story in
closed form: for :math:`N` uniform samples on the torus :math:`[0,1)^d`, :math:`P(D_\infty > s) = (1-(2s)^d)^N`
for :math:`s\le\frac12`, hence

.. math:: \mathbb E[D_\infty] = \frac12\int_0^1(1-u^d)^N\,du
    = \frac{\Gamma(1+1/d)\,\Gamma(N+1)}{2\,\Gamma(N+1+1/d)} \sim \frac{\Gamma(1+1/d)}{2}N^{-1/d}.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_choice, check_positive, check_positive_int, check_tensor

Tensor = torch.Tensor


def covering_number(eps: float, d: int) -> int:
    r"""Upper bound :math:`\lceil 1/(2\varepsilon)\rceil^d` on the number of sup-norm balls of radius ``eps`` that
    cover :math:`[0,1]^d` (a grid of centres), as an exact Python integer; the volume bound
    :math:`(1/(2\varepsilon))^d` shows it is tight when :math:`1/(2\varepsilon)` is an integer."""
    check_positive(eps, "eps")
    d = check_positive_int(d, "d")
    return math.ceil(1 / (2 * eps) - 1e-12) ** d


def expected_nn_distance(n: int, d: int) -> float:
    r""":math:`\mathbb E[D_\infty]`, the mean sup-norm distance from a uniform point of the torus :math:`[0,1)^d` to
    the nearest of ``n`` independent uniform samples: :math:`\Gamma(1+1/d)\Gamma(n+1)/(2\Gamma(n+1+1/d))`."""
    n, d = check_positive_int(n, "n"), check_positive_int(d, "d")
    return 0.5 * math.exp(math.lgamma(1 + 1 / d) + math.lgamma(n + 1) - math.lgamma(n + 1 + 1 / d))


def nn_distance(queries: Tensor, data: Tensor, norm: str = "l2", torus: bool = False, chunk_size: int = 1024) -> Tensor:
    """Distance ``(M,)`` from each of ``queries`` ``(M, d)`` to its nearest point of ``data`` ``(N, d)``.

    ``norm``: ``"l2"`` or ``"linf"``; ``torus=True`` measures coordinates modulo 1 (no boundary effects).
    Also accepts stacks ``(S, M, d)`` and ``(S, N, d)`` of independent problems, returning ``(S, M)``.
    """
    queries = check_tensor(queries, "queries", min_dim=2)
    data = check_tensor(data, "data", min_dim=2)
    check_choice(norm, "norm", ("l2", "linf"))
    if queries.dim() != data.dim() or queries.shape[-1] != data.shape[-1] or queries.shape[:-2] != data.shape[:-2]:
        raise ValueError(
            f"data must have shape (..., N, {queries.shape[-1]}) matching queries {tuple(queries.shape)}, "
            f"got {tuple(data.shape)}"
        )
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    p = math.inf if norm == "linf" else 2.0
    out = []
    for q in queries.split(chunk_size, dim=-2):
        if torus:  # distance per coordinate modulo 1: min(|u - v|, 1 - |u - v|), then the norm
            diff = (q.unsqueeze(-2) - data.unsqueeze(-3)).abs()  # (..., m, N, d)
            dist = torch.linalg.vector_norm(torch.minimum(diff, 1 - diff), ord=p, dim=-1)
        else:
            dist = torch.cdist(q, data, p=p, compute_mode="donot_use_mm_for_euclid_dist")
        out.append(dist.amin(-1))
    return torch.cat(out, dim=-1)
