r"""LOCO Edit (Chen et al. 2024): local, training-free image edits along the low-rank Jacobian of the denoiser.

At an edit time :math:`t` the posterior-mean predictor :math:`f(x_t) = D(x_t, t)` is locally linear and low-rank,
:math:`f(x_t + \lambda v) \approx f(x_t) + \lambda J v`. For a region :math:`\Omega` of the image (a mask),

1. the top right singular vectors :math:`v_1, \dots, v_r` of the masked Jacobian :math:`J_\Omega = P_\Omega J` move
   the prediction most inside :math:`\Omega` (:math:`J v_i` restricted to :math:`\Omega` is :math:`\sigma_i u_i`);
2. projecting each off the top :math:`r'` right singular vectors :math:`\bar V` of the complement's Jacobian
   :math:`J_{\Omega^c}`, :math:`v_p = (I - \bar V\bar V^\top)v / \|\cdot\|`, leaves the prediction outside
   :math:`\Omega` unchanged to first order (:math:`\|J_{\Omega^c}v_p\| \le \sigma_{r'+1}(J_{\Omega^c})`);
3. the edit inverts a clean image to :math:`x_t` (:func:`~lowdim.samplers.invert`), steps to
   :math:`x_t + \sum_j \lambda_j v_j` and denoises back with the same deterministic sampler
   (:func:`~lowdim.samplers.sample` from ``t_start=t``).

The same directions applied to another image's :math:`x_t` transfer the edit; several directions with their own
:math:`\lambda_j` compose. The directions come from :func:`~lowdim.jacobian.jacobian_svd` with ``mask`` (block
Krylov, no Jacobian formed), not from the paper's per-vector power method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ._checks import check_batch, check_callable, check_positive_int, check_tensor
from .jacobian import jacobian_svd, output_mask
from .samplers import invert, sample
from .schedules import Schedule

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor], Tensor]


class EditDirections(NamedTuple):
    """:func:`edit_directions` result, per item of the batch."""

    directions: Tensor  # (B, d, r) unit edit directions v_p (projected off `complement` when it has columns)
    singular_values: Tensor  # (B, r) the singular values sigma_i of J_Omega belonging to the raw directions
    raw: Tensor  # (B, d, r) top right singular vectors of J_Omega, before projection
    complement: Tensor  # (B, d, r') top right singular vectors of J_Omega^c (empty when null_rank = 0)


def project_off(V: Tensor, basis: Tensor) -> Tensor:
    r"""Columns of ``V`` ``(B, d, r)`` projected off the span of the orthonormal columns of ``basis`` ``(B, d, r')``,
    :math:`(I - \bar V\bar V^\top)v`, each normalized to unit length. Raises ``ValueError`` if a column lies inside
    the span (nothing is left to normalize)."""
    residual = V - basis @ (basis.transpose(-1, -2) @ V)
    norms = torch.linalg.vector_norm(residual, dim=-2, keepdim=True)
    if bool((norms <= 1e-6 * torch.linalg.vector_norm(V, dim=-2, keepdim=True)).any()):
        raise ValueError("a direction lies inside the span of basis: its projection is zero")
    return residual / norms


def edit_directions(
    D: Denoiser,
    x_t: Tensor,
    t: float,
    mask: Tensor,
    rank: int = 5,
    null_rank: int = 20,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
    max_iters: int = 100,
) -> EditDirections:
    r"""Edit directions for the region ``mask`` at the noisy images ``x_t`` ``(B, *shape)``: the top ``rank`` right
    singular vectors of :math:`J_\Omega` (``mask`` nonzero: :math:`\Omega`; it broadcasts to ``x_t``'s shape),
    projected off the top ``null_rank`` right singular vectors of :math:`J_{\Omega^c}` (module docstring;
    ``null_rank=0``: no projection). Both from :func:`~lowdim.jacobian.jacobian_svd` with tolerance ``tol`` and at
    most ``max_iters`` iterations."""
    check_callable(D, "D")
    x_t = check_batch(x_t, "x_t")
    rank = check_positive_int(rank, "rank")
    if isinstance(null_rank, bool) or not isinstance(null_rank, int) or null_rank < 0:
        raise ValueError(f"null_rank must be a non-negative int, got {null_rank!r}")
    inside = output_mask(mask, x_t)
    inner = jacobian_svd(D, x_t, t, rank, tol=tol, max_iters=max_iters, generator=generator, mask=inside)
    if null_rank == 0:
        complement = x_t.new_zeros(x_t.shape[0], inner.V.shape[1], 0)
        return EditDirections(inner.V, inner.S, inner.V, complement)
    outer = jacobian_svd(D, x_t, t, null_rank, tol=tol, max_iters=max_iters, generator=generator, mask=1 - inside)
    return EditDirections(project_off(inner.V, outer.V), inner.S, inner.V, outer.V)


def _lambdas(lambdas: float | Tensor, B: int, j: int, like: Tensor) -> Tensor:
    """Step sizes as ``(B, j)``: a number, or a tensor of shape ``(j,)`` or ``(B, j)``."""
    if isinstance(lambdas, bool) or not isinstance(lambdas, (int, float, torch.Tensor)):
        raise TypeError(f"lambdas must be a number or a tensor, got {type(lambdas).__name__}")
    lam = check_tensor(torch.as_tensor(lambdas, dtype=like.dtype, device=like.device), "lambdas", min_dim=0)
    if lam.numel() == 1:
        lam = lam.reshape(())
    if lam.shape in ((), (j,)):
        return lam.expand(B, j)
    if lam.shape != (B, j):
        raise ValueError(f"lambdas must be a number or have shape ({j},) or ({B}, {j}), got {tuple(lam.shape)}")
    return lam


def step_along(x_t: Tensor, directions: Tensor, lambdas: float | Tensor) -> Tensor:
    r""":math:`x_t + \sum_j \lambda_j v_j` for ``x_t`` ``(B, *shape)`` and ``directions`` ``(B, d, j)`` (or ``(d, j)``,
    the same directions for every item: a transfer), ``lambdas`` a number, ``(j,)`` or ``(B, j)``."""
    x_t = check_batch(x_t, "x_t")
    directions = check_tensor(directions, "directions", min_dim=2)
    B, d = x_t.shape[0], x_t[0].numel()
    if directions.dim() == 2:
        directions = directions.expand(B, *directions.shape)
    if directions.dim() != 3 or directions.shape[:2] != (B, d):
        raise ValueError(f"directions must have shape ({B}, {d}, j) or ({d}, j), got {tuple(directions.shape)}")
    lam = _lambdas(lambdas, B, directions.shape[-1], x_t)
    return x_t + (directions @ lam[..., None]).reshape(x_t.shape)


def loco_edit(
    D: Denoiser,
    x0: Tensor,
    schedule: Schedule,
    t: float,
    directions: Tensor,
    lambdas: float | Tensor,
    steps: int = 50,
    x_t: Tensor | None = None,
) -> Tensor:
    r"""Edit clean images ``x0`` ``(B, *shape)``: invert them to :math:`x_t` (:func:`~lowdim.samplers.invert`, DDIM
    with ``steps`` steps; pass ``x_t`` to reuse an inversion), step to :math:`x_t + \sum_j\lambda_j v_j`
    (:func:`step_along`: one direction or several to compose, found on these images or on others to transfer) and
    denoise back with DDIM from ``t``. ``lambdas = 0`` gives the reconstruction the edit should be measured against."""
    check_callable(D, "D")
    x0 = check_batch(x0, "x0")
    if x_t is None:
        x_t = invert(D, x0, schedule, t, steps)
    elif x_t.shape != x0.shape:
        raise ValueError(f"x_t must have x0's shape {tuple(x0.shape)}, got {tuple(x_t.shape)}")
    return sample(D, step_along(x_t, directions, lambdas), schedule, steps=steps, method="ddim", t_start=t)
