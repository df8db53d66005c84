r"""The denoiser Jacobian :math:`J = \partial D(x_t, t)/\partial x_t`: full matrices, top singular triplets, rank by
energy and local linearity.

Conventions: ``f`` maps a batch ``(B, *shape)`` to ``(B, *out_shape)`` item by item (no mixing across the batch,
which holds for every denoiser in :mod:`lowdim`), optionally with a time ``t`` (a float or a ``(B,)`` tensor) as
``f(x, t)``. Jacobians are per item: ``J[b] = ∂f(x)[b]/∂x[b]``, flattened to ``(m, d)``.

Routes (device- and dtype-agnostic):

- :func:`jacobian`: one forward pass, then batched reverse passes that reuse its graph
  (``torch.autograd.grad(..., is_grads_batched=True)``), ``chunk_size`` output rows at a time.
- :func:`jacobian_svd`: block subspace iteration on :math:`J^\top J`. Each iteration pushes all ``k`` directions
  through the network at once: a forward-mode pass (dual tensors) on a batch of ``k`` copies of ``x`` gives
  :math:`JV`, and one reverse pass through a graph built once on those copies gives :math:`J^\top (JV)`.
- :func:`point_ranks` / :func:`rank_ratio`: the rank by energy (:func:`effective_rank`) exactly from full Jacobians,
  or from the top ``k`` singular values plus a deflated Hutchinson estimate of the rest (:func:`frobenius_sq`), at
  points along PF-ODE trajectories (:func:`trajectory_points`) or forward marginals.
- :func:`linearity`: how far a denoiser is from its first-order Taylor expansion along a direction.

Denoisers with a closed-form Jacobian (a ``jacobian(x, t)`` attribute, as the MoLRG, Gaussian and empirical
denoisers' ``.denoiser(schedule)`` callables have) are asked for it instead of autograd.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.autograd.forward_ad as fwAD
from tqdm.auto import tqdm

with warnings.catch_warnings():
    # On first use, forward-mode AD registers decompositions through torch.jit.script, which torch 2.13 deprecates
    # with a warning on every registration; importing the module here keeps those warnings out of user output.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
    import torch._decomp.decompositions_for_jvp  # noqa: F401

from ._checks import check_batch, check_callable, check_positive, check_positive_int, check_tensor
from ._random import randn
from .samplers import sample, sample_prior, time_grid
from .schedules import Schedule
from .sde import perturb

Tensor = torch.Tensor


def _bind_time(f: Callable, t: float | Tensor | None, copies: int = 1) -> Callable[[Tensor], Tensor]:
    """``x -> f(x, t)`` with ``t`` repeated for ``copies`` stacked copies of the batch (or ``f`` itself if no ``t``)."""
    if t is None:
        return f
    if isinstance(t, torch.Tensor) and t.dim() == 1:
        t = t.repeat(copies)
    return lambda x: f(x, t)


def jacobian(
    f: Callable[..., Tensor], x: Tensor, t: float | Tensor | None = None, chunk_size: int | None = None
) -> Tensor:
    r"""Per-item Jacobians ``(B, m, d)`` of ``f`` at ``x`` ``(B, *shape)`` (``d = prod(shape)``, ``m`` the number of
    outputs per item).

    One forward pass, then ``ceil(m / chunk_size)`` batched reverse passes through the same graph; each computes
    ``chunk_size`` rows of every item's Jacobian and holds about ``chunk_size · B · d`` numbers. The default keeps that
    near :math:`2^{20}` (at least one row): on a 2-core CPU, for a U-Net at :math:`d = 3072`, 256 rows per pass took
    5.5 s against 11.0 s for all 3072 at once (``benchmarks/jacobian.py``). A denoiser that knows its Jacobian in closed form (a ``jacobian(x, t)``
    attribute) is asked for it instead.
    """
    check_callable(f, "f")
    x = check_batch(x, "x")
    closed_form = getattr(f, "jacobian", None)
    if callable(closed_form) and t is not None:
        return closed_form(x, t)
    B, d = x.shape[0], math.prod(x.shape[1:])
    g = _bind_time(f, t)
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        y = g(x_in).reshape(B, -1)
    m = y.shape[1]
    if chunk_size is None:
        chunk = max(1, min(m, 2**20 // (B * d)))
    else:
        chunk = check_positive_int(chunk_size, "chunk_size")
    J = x.new_empty(B, m, d)
    eye = torch.eye(m, dtype=y.dtype, device=y.device)
    for start in range(0, m, chunk):
        rows = eye[start : start + chunk]  # (c, m)
        cotangents = rows[:, None, :].expand(len(rows), B, m)  # row i of every item at once
        (grads,) = torch.autograd.grad(y, x_in, cotangents, retain_graph=True, is_grads_batched=True)
        J[:, start : start + len(rows)] = grads.reshape(len(rows), B, d).transpose(0, 1)
    return J


class BatchedJacobian:
    """Products of each item's Jacobian with ``k`` vectors at once, on ``k`` stacked copies of the batch ``x``.

    ``jvp(V)``: ``(B, d, k) → (B, m, k)``, :math:`JV`, by one forward-mode pass (dual tensors) on the ``k·B`` copies;
    ``vjp(Y)``: ``(B, m, k) → (B, d, k)``, :math:`J^\\top Y`, by one reverse pass through a graph built on the copies at
    the first call and reused after. ``passes`` counts network passes, one per copy per forward or reverse pass.
    """

    def __init__(self, f: Callable[..., Tensor], x: Tensor, t: float | Tensor | None, k: int) -> None:
        self.k, self.batch, self.shape = k, x.shape[0], x.shape[1:]
        self._g = _bind_time(f, t, copies=k)
        self._copies = x.detach().repeat(k, *([1] * len(self.shape)))  # copy j of item b at row j·B + b
        self._graph: tuple[Tensor, Tensor] | None = None
        self.passes = 0

    def _stack(self, V: Tensor, shape: tuple[int, ...]) -> Tensor:  # (B, n, k) -> (k·B, *shape)
        return V.permute(2, 0, 1).reshape(self.k * self.batch, *shape)

    def _unstack(self, Z: Tensor) -> Tensor:  # (k·B, ...) -> (B, n, k)
        return Z.reshape(self.k, self.batch, -1).permute(1, 2, 0)

    def jvp(self, V: Tensor) -> Tensor:
        with torch.no_grad(), fwAD.dual_level():
            out = self._g(fwAD.make_dual(self._copies, self._stack(V, self.shape)))
            self.passes += self.k
            return self._unstack(fwAD.unpack_dual(out).tangent)

    def vjp(self, Y: Tensor) -> Tensor:
        if self._graph is None:
            with torch.enable_grad():
                leaf = self._copies.clone().requires_grad_(True)
                self._graph = (leaf, self._g(leaf))
            self.passes += self.k
        leaf, out = self._graph
        (grad,) = torch.autograd.grad(out, leaf, self._stack(Y, out.shape[1:]), retain_graph=True)
        self.passes += self.k
        return self._unstack(grad)


class _MatrixProducts:
    """:class:`BatchedJacobian`'s ``jvp``/``vjp`` for Jacobians ``(B, m, d)`` already in hand (closed forms)."""

    passes = 0

    def __init__(self, J: Tensor) -> None:
        self._J = J.reshape(J.shape[0], J.shape[1], -1)

    def jvp(self, V: Tensor) -> Tensor:
        return self._J @ V

    def vjp(self, Y: Tensor) -> Tensor:
        return self._J.transpose(-1, -2) @ Y


def frobenius_sq(
    f: Callable[..., Tensor], x: Tensor, t: float | Tensor | None, probes: int = 32,
    generator: torch.Generator | None = None, deflate: Tensor | None = None,
) -> Tensor:  # fmt: skip
    r"""Unbiased estimate ``(B,)`` of :math:`\|J\|_F^2 = \mathbb E_z\|Jz\|^2`, :math:`z\sim\mathcal N(0, I_d)`
    (Hutchinson), from ``probes`` Jacobian–vector products per item in one forward-mode pass. Its relative standard
    deviation is at most :math:`\sqrt{2/\text{probes}}`, less when the spectrum is spread over many directions.

    ``deflate`` ``(B, d, k)`` with orthonormal columns :math:`V` (e.g. the top right singular vectors from
    :func:`jacobian_svd`): estimate only the rest, :math:`\|J(I - VV^\top)\|_F^2`, from probes projected off
    :math:`V` (so :math:`\|J\|_F^2 = \|JV\|_F^2 +` this, with the random error confined to the small tail; the idea of
    Hutch++, Meyer et al. 2021)."""
    x = check_batch(x, "x")
    probes = check_positive_int(probes, "probes")
    op = BatchedJacobian(f, x, t, probes)
    Z = randn((x.shape[0], math.prod(x.shape[1:]), probes), generator, x.dtype, x.device)
    if deflate is not None:
        if deflate.shape[:2] != Z.shape[:2]:
            raise ValueError(f"deflate must have shape ({Z.shape[0]}, {Z.shape[1]}, k), got {tuple(deflate.shape)}")
        Z = Z - deflate @ (deflate.transpose(-1, -2) @ Z)
    return (op.jvp(Z) ** 2).sum(1).mean(-1)


class JacobianSVD(NamedTuple):
    """Top-``k`` singular triplets of each item's Jacobian, :math:`J \\approx U\\,\\mathrm{diag}(S)\\,V^\\top`."""

    U: Tensor  # (B, m, k) left singular vectors
    S: Tensor  # (B, k) singular values, descending
    V: Tensor  # (B, d, k) right singular vectors
    passes: int  # network passes used: one per direction per JVP or VJP, plus the graph-building forward passes
    iterations: int


def _orthonormal(Z: Tensor) -> Tensor:
    return torch.linalg.qr(Z).Q


def subspace_sin(V: Tensor, W: Tensor) -> Tensor:
    r"""Sine of the largest principal angle between the column spans of ``V`` and ``W`` (both ``(..., d, k)``,
    orthonormal columns): :math:`\|(I - VV^\top)W\|_2`. Invariant to signs and rotations within the span. Computed
    from the residual, not as :math:`\sqrt{1 - \cos^2}`, which cannot resolve angles below ~5e-4 in float32."""
    residual = W - V @ (V.transpose(-1, -2) @ W)
    return torch.linalg.matrix_norm(residual, ord=2).clamp(max=1)


def jacobian_svd(
    f: Callable[..., Tensor],
    x: Tensor,
    t: float | Tensor | None,
    k: int,
    tol: float = 1e-4,
    max_iters: int = 200,
    generator: torch.Generator | None = None,
) -> JacobianSVD:
    r"""Top-``k`` singular triplets of the Jacobian of ``f`` at each item of ``x`` ``(B, *shape)``, matrix-free.

    Block subspace iteration on :math:`J^\top J` (Golub & Van Loan, Alg. 8.2.2): :math:`V \leftarrow
    \mathrm{qr}(J^\top J V)`, with :math:`JV` from a forward-mode pass on ``k`` stacked copies of ``x`` and
    :math:`J^\top(JV)` from one reverse pass through a graph built once. It stops when the sine of the largest
    principal angle between successive subspaces falls below ``tol`` for every item (signs and rotations inside
    the subspace do not count), then a Rayleigh–Ritz step (an SVD of the ``m × k`` matrix :math:`JV`) returns
    ordered singular values and vectors. The error of the subspace shrinks like
    :math:`(\sigma_{k+1}/\sigma_k)^{2i}` after ``i`` iterations. A denoiser with a closed-form Jacobian (a
    ``jacobian(x, t)`` attribute) runs the same iteration on that matrix, with no network passes.
    """
    check_callable(f, "f")
    x = check_batch(x, "x")
    k = check_positive_int(k, "k")
    check_positive(tol, "tol")
    max_iters = check_positive_int(max_iters, "max_iters")
    B, d = x.shape[0], math.prod(x.shape[1:])
    if k > d:
        raise ValueError(f"k must be at most d = {d}, got {k}")
    closed_form = getattr(f, "jacobian", None)
    if callable(closed_form) and t is not None:
        op: BatchedJacobian | _MatrixProducts = _MatrixProducts(closed_form(x, t))
    else:
        op = BatchedJacobian(f, x, t, k)
    V = _orthonormal(randn((B, d, k), generator, x.dtype, x.device))
    iterations = 0
    while iterations < max_iters:
        iterations += 1
        V_next = _orthonormal(op.vjp(op.jvp(V)))
        converged = bool((subspace_sin(V, V_next) < tol).all())
        V = V_next
        if converged:
            break
    JV = op.jvp(V)  # Rayleigh–Ritz: J V = U_k S W^T, so J ≈ U_k S (V W)^T on span(V)
    U, S, Wt = torch.linalg.svd(JV, full_matrices=False)
    return JacobianSVD(U, S, V @ Wt.transpose(-1, -2), op.passes, iterations)


def effective_rank(S: Tensor, energy: float = 0.99, total: Tensor | None = None) -> Tensor:
    r"""Smallest :math:`r` with :math:`\sum_{i\le r}\sigma_i^2 \ge \text{energy}^2 \sum_i \sigma_i^2`, per row of
    ``S`` ``(..., k)`` (singular values in descending order).

    ``total`` ``(...)`` replaces :math:`\sum_i\sigma_i^2` when ``S`` holds only the top ``k`` values (e.g.
    :math:`\|J\|_F^2`); a row whose top ``k`` do not reach the energy gets ``k + 1``, read "more than ``k``".
    """
    S = check_tensor(S, "S")
    if not 0 < energy <= 1:
        raise ValueError(f"energy must lie in (0, 1], got {energy}")
    power = S.double() ** 2
    cumulative = power.cumsum(-1)
    whole = cumulative[..., -1] if total is None else torch.as_tensor(total, dtype=torch.float64, device=S.device)
    reached = cumulative >= (energy**2) * whole[..., None] * (1 - 1e-12)
    k = S.shape[-1]
    first = torch.where(
        reached.any(-1), reached.double().argmax(-1) + 1, torch.full_like(whole, k + 1, dtype=torch.long)
    )
    return first.long()


def linearity(
    f: Callable[..., Tensor], x: Tensor, t: float | Tensor | None, direction: Tensor, lambdas: Tensor
) -> tuple[Tensor, Tensor]:
    r"""How linear ``f`` is around ``x`` along ``direction`` (both ``(B, *shape)``), for each step ``λ`` of
    ``lambdas`` ``(L,)``: the norm ratio :math:`\|f(x + \lambda\Delta x)\| / \|f(x) + \lambda J\Delta x\|` and the
    cosine between those two vectors, each ``(B, L)``. Both are 1 for a linear map."""
    check_callable(f, "f")
    x = check_batch(x, "x")
    direction = check_batch(direction, "direction")
    if direction.shape != x.shape:
        raise ValueError(f"direction must have x's shape {tuple(x.shape)}, got {tuple(direction.shape)}")
    lambdas = check_tensor(torch.as_tensor(lambdas, dtype=x.dtype, device=x.device), "lambdas")
    g = _bind_time(f, t)
    with torch.no_grad(), fwAD.dual_level():
        out = g(fwAD.make_dual(x, direction))
        fx, Jdx = fwAD.unpack_dual(out).primal.reshape(len(x), -1), fwAD.unpack_dual(out).tangent.reshape(len(x), -1)
    ratios, cosines = [], []
    with torch.no_grad():
        for lam in lambdas:
            moved = g(x + lam * direction).reshape(len(x), -1)
            linear = fx + lam * Jdx
            ratios.append(moved.norm(dim=1) / linear.norm(dim=1))
            cosines.append(torch.nn.functional.cosine_similarity(moved, linear, dim=1))
    return torch.stack(ratios, 1), torch.stack(cosines, 1)


def trajectory_points(
    D: Callable[..., Tensor], x_T: Tensor, times: Tensor, schedule: Schedule, steps: int = 40
) -> Tensor:
    r"""States ``(T, B, *shape)`` of the Heun PF-ODE trajectories of ``D`` from the noises ``x_T`` ``(B, *shape)`` at
    each of ``times`` ``(T,)``: the solver runs on the union of :func:`~lowdim.time_grid` ``(schedule, steps)`` and
    ``times``, so every requested time is a grid point."""
    x_T = check_batch(x_T, "x_T")
    times = check_tensor(torch.as_tensor(times, dtype=torch.float64), "times")
    if bool((times <= 0).any()) or bool((times > 1).any()):
        raise ValueError("times must lie in (0, 1]")
    # the sampler runs the grid in x_T's dtype: merge and match times in that precision
    requested = times.to(x_T.dtype)
    grid = torch.cat([time_grid(schedule, check_positive_int(steps, "steps")).to(x_T.dtype), requested])
    grid = grid.unique(sorted=True).flip(0)
    states = x_T.new_empty(len(times), *x_T.shape)
    seen = torch.zeros(len(times), dtype=torch.bool)

    def record(state: dict) -> None:
        hit = (requested == state["t"].to(requested.device)).nonzero()
        if len(hit):
            states[hit[:, 0]] = state["x"]
            seen[hit[:, 0]] = True

    with torch.no_grad():
        states[requested == 1] = x_T
        seen |= (requested == 1).cpu()
        sample(D, x_T, schedule, t_grid=grid, callback=record)
    if not bool(seen.all()):  # pragma: no cover - a grid point always lands on every requested time
        raise RuntimeError(f"times {times[~seen].tolist()} were not visited by the sampler")
    return states


class RankRatio(NamedTuple):
    """:func:`rank_ratio` result: the rank ratio's mean and standard deviation over the points at each time, and
    every point's rank by energy (``k + 1`` means "more than ``k``" on the top-``k`` route)."""

    times: Tensor  # (T,)
    mean: Tensor  # (T,)
    std: Tensor  # (T,)
    ranks: Tensor  # (T, n) long


def point_ranks(
    D: Callable[..., Tensor],
    x: Tensor,
    t: float,
    energy: float = 0.99,
    k: int | None = None,
    probes: int = 64,
    tol: float = 1e-2,
    max_iters: int = 8,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Rank by energy ``(B,)`` of the Jacobian of ``D(·, t)`` at each item of ``x``.

    ``k=None``: exactly, from the singular values of the full Jacobian (:func:`jacobian`, one item at a time when
    :math:`d` is large). ``k`` an int: without the full Jacobian, from the top-``k`` singular values of
    :func:`jacobian_svd` (a few subspace iterations: the captured energy converges much faster than the vectors) and
    the energy outside their span by :func:`frobenius_sq` with ``probes`` deflated probes; a rank above ``k`` is
    reported as ``k + 1``.
    A denoiser with a closed-form Jacobian always takes the exact route.
    """
    x = check_batch(x, "x")
    d = math.prod(x.shape[1:])
    if k is None or callable(getattr(D, "jacobian", None)):
        per_call = max(1, 2**24 // (d * d))  # at most 16 M Jacobian entries in memory at once
        S = torch.cat([torch.linalg.svdvals(jacobian(D, x[i : i + per_call], t, chunk_size=chunk_size))
                       for i in range(0, len(x), per_call)])  # fmt: skip
        return effective_rank(S, energy)
    top = jacobian_svd(D, x, t, k, tol=tol, max_iters=max_iters, generator=generator)
    # ||J||_F^2 = ||J V||_F^2 + ||J (I - V V^T)||_F^2: the first part is the top-k energy, only the tail is sampled.
    # (Plain Hutchinson errs by ~sqrt(2/probes) of the total, far more than the 1 - 0.99^2 = 2 % the rank hinges on.)
    tail = frobenius_sq(D, x, t, probes=probes, generator=generator, deflate=top.V)
    return effective_rank(top.S, energy, total=(top.S**2).sum(-1) + tail)


def rank_ratio(
    D: Callable[..., Tensor],
    times: Tensor,
    schedule: Schedule,
    *,
    x0: Tensor | None = None,
    shape: tuple[int, ...] | None = None,
    draws: int = 8,
    steps: int = 40,
    energy: float = 0.99,
    k: int | None = None,
    probes: int = 64,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> RankRatio:
    r"""Rank ratio :math:`\operatorname{rank}_{\text{energy}}(J)/d` of the denoiser Jacobian :math:`J = \partial D(x_t,
    t)/\partial x_t` against ``times`` ``(T,)``, averaged over noise draws.

    Points :math:`x_t`: with ``x0`` ``(B, *shape)``, the forward marginal :math:`\alpha_t x_0 + \beta_t\varepsilon`
    with ``draws`` noises per clean point (``B · draws`` points); otherwise ``draws`` noises :math:`x_T` of item
    ``shape`` and the states of their PF-ODE trajectories under ``D`` (:func:`trajectory_points`, ``steps`` Heun
    steps). Ranks come from :func:`point_ranks` (exact with ``k=None``, else top-``k`` plus Hutchinson).
    """
    check_callable(D, "D")
    times = check_tensor(torch.as_tensor(times, dtype=torch.float64), "times")
    draws = check_positive_int(draws, "draws")
    if x0 is not None:
        x0 = check_batch(x0, "x0")
        stacked = x0.repeat(draws, *([1] * (x0.dim() - 1)))
        points = torch.stack([perturb(stacked, float(t), schedule, generator=generator)[0] for t in times])
    else:
        if shape is None:
            raise ValueError("shape must be given (one item's shape) when x0 is None")
        x_T = sample_prior(schedule, (draws, *shape), generator=generator, dtype=dtype)
        points = trajectory_points(D, x_T, times, schedule, steps)
    d = math.prod(points.shape[2:])
    ranks = torch.stack([
        point_ranks(D, points[i], float(t), energy, k=k, probes=probes, generator=generator, chunk_size=chunk_size)
        for i, t in enumerate(tqdm(times, desc="rank ratio", disable=not progress))
    ])  # fmt: skip
    ratio = ranks.double() / d
    std = ratio.std(1) if ratio.shape[1] > 1 else torch.zeros(len(times), dtype=torch.float64)
    return RankRatio(times, ratio.mean(1), std, ranks)
