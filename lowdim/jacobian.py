r"""The denoiser Jacobian :math:`J = \partial D(x_t, t)/\partial x_t`: full matrices, top singular triplets, rank by
energy and local linearity.

Conventions: ``f`` maps a batch ``(B, *shape)`` to ``(B, *out_shape)`` item by item (no mixing across the batch,
which holds for every denoiser in :mod:`lowdim`), optionally with a time ``t`` (a float or a ``(B,)`` tensor) as
``f(x, t)``. Jacobians are per item: ``J[b] = ∂f(x)[b]/∂x[b]``, flattened to ``(m, d)``.

Routes (device- and dtype-agnostic):

- :func:`jacobian`: one graph on a chunk of stacked copies of ``x``, then plain reverse passes through it with
  one-hot cotangents, ``chunk_size`` output rows per pass.
- :func:`jacobian_svd`: block Krylov iteration on :math:`J^\top J` with Rayleigh–Ritz. Each iteration pushes a
  whole block of directions through the network at once, as reverse passes through graphs built once on copies of
  ``x`` (:class:`BatchedJacobian`).
- :func:`point_ranks`: the rank by energy (:func:`effective_rank`) exactly from full Jacobians, or from a growing
  Krylov space that stops once each rank is decided, plus a deflated Hutchinson estimate of the energy outside it
  (:func:`lowdim.rank_ratio` runs it along PF-ODE trajectories or forward marginals).
- :func:`linearity`: how far a denoiser is from its first-order Taylor expansion along a direction.

A denoiser that knows its Jacobian in closed form says so by following the :class:`ClosedFormJacobian` protocol
(a ``jacobian(x, t)`` method, as the ``.denoiser(schedule)`` of the MoLRG, Gaussian and empirical laws has); the
kernel then asks it instead of differentiating. The kernel knows no model class.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

import torch

with warnings.catch_warnings():
    # On first use, forward-mode AD registers decompositions through torch.jit.script, which torch 2.13 deprecates
    # with a warning on every registration; importing the module here keeps those warnings out of user output.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
    import torch._decomp.decompositions_for_jvp  # noqa: F401

from ._checks import check_batch, check_callable, check_positive, check_positive_int, check_tensor
from ._random import randn

Tensor = torch.Tensor


@runtime_checkable
class ClosedFormJacobian(Protocol):
    """A denoiser ``D(x, t)`` that also returns its per-item Jacobian :math:`\\partial D(x, t)/\\partial x` in closed
    form, ``(B, d, d)`` for ``x`` ``(B, *shape)``. :func:`jacobian`, :func:`jacobian_svd` and :func:`point_ranks` use
    it instead of autograd whenever a time ``t`` is given."""

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor: ...

    def jacobian(self, x: Tensor, t: float | Tensor) -> Tensor: ...


def _closed_form(f: Callable, t: float | Tensor | None) -> Callable[[Tensor, float | Tensor], Tensor] | None:
    """``f.jacobian`` when ``f`` follows :class:`ClosedFormJacobian` and a time is given, else ``None``."""
    return f.jacobian if t is not None and isinstance(f, ClosedFormJacobian) else None


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

    Rows come ``chunk_size`` at a time: one forward pass builds a graph on ``chunk_size`` stacked copies of the batch,
    and each plain reverse pass through it, with cotangent :math:`e_{i+j}` on copy ``j``, returns rows ``i`` to
    ``i + chunk_size - 1`` of every item's Jacobian. So every pass is one batched kernel per layer, on any device
    (``is_grads_batched`` instead runs through vmap, which PyTorch loops over rows for the backward of convolution
    and group norm). The default ``chunk_size`` gives each pass about :math:`2^{17}` input numbers (42 copies of one
    3 x 32 x 32 image). A :class:`ClosedFormJacobian` denoiser is asked for its Jacobian instead.
    """
    check_callable(f, "f")
    x = check_batch(x, "x")
    closed_form = _closed_form(f, t)
    if closed_form is not None:
        return closed_form(x, t)
    B, d = x.shape[0], math.prod(x.shape[1:])
    if chunk_size is None:
        chunk = max(1, min(d, 2**17 // (B * d)))
        chunk = math.ceil(d / math.ceil(d / chunk))  # the same number of passes, no wasted rows in the last one
    else:
        chunk = check_positive_int(chunk_size, "chunk_size")
    op = BatchedJacobian(f, x, t, chunk)
    m = op.outputs
    J = x.new_empty(B, m, d)
    eye = torch.eye(m, chunk, dtype=J.dtype, device=J.device)  # (m, chunk): column j is e_j
    for start in range(0, m, chunk):
        n = min(chunk, m - start)
        rows = op.vjp(eye.roll(start, 0).expand(B, m, chunk))  # (B, d, chunk), column j = row start + j
        J[:, start : start + n] = rows[..., :n].transpose(1, 2)
    return J


class BatchedJacobian:
    """Products of each item's Jacobian with ``k`` vectors at once, through one graph on ``k`` stacked copies of the
    batch ``x``, built at the first call and reused after.

    ``vjp(Y)``: ``(B, m, j) → (B, d, j)``, :math:`J^\\top Y`, one plain reverse pass.
    ``jvp(V)``: ``(B, d, j) → (B, m, j)``, :math:`JV`, one reverse pass through the graph of :math:`u \\mapsto
    J^\\top u` (double backward; it is linear in :math:`u`, so its own reverse pass with cotangent :math:`V` gives
    :math:`JV`). On this CPU that was twice as fast as forward mode (:func:`torch.func.jvp`) for a U-Net; a network
    without double backward falls back to forward mode, and ``forward_mode=True`` uses it from the start (one pass
    per product, no graphs: cheaper for a single product). ``j ≤ k``: fewer vectors are padded with zeros.
    ``passes`` counts network passes, one per copy per forward or reverse pass (graph building included).
    """

    def __init__(
        self, f: Callable[..., Tensor], x: Tensor, t: float | Tensor | None, k: int, forward_mode: bool = False
    ) -> None:
        self.k, self.batch, self.shape = k, x.shape[0], x.shape[1:]
        self.dtype, self.device = x.dtype, x.device
        self._g = _bind_time(f, t, copies=k)
        self._copies = x.detach().repeat(k, *([1] * len(self.shape)))  # copy j of item b at row j·B + b
        self._graph: tuple[Tensor, Tensor] | None = None
        self._transposed: tuple[Tensor, Tensor] | None = None  # (u, J^T u) as a differentiable graph
        self._dual = forward_mode  # forward mode: for one-off products, and networks without double backward
        self.passes = 0

    def _stack(self, V: Tensor, shape: tuple[int, ...]) -> Tensor:  # (B, n, j) -> (k·B, *shape)
        if V.shape[-1] < self.k:
            V = torch.nn.functional.pad(V, (0, self.k - V.shape[-1]))
        return V.permute(2, 0, 1).reshape(self.k * self.batch, *shape)

    def _unstack(self, Z: Tensor, j: int) -> Tensor:  # (k·B, ...) -> (B, n, j)
        return Z.reshape(self.k, self.batch, -1)[:j].permute(1, 2, 0)

    @property
    def graph(self) -> tuple[Tensor, Tensor]:
        if self._graph is None:
            with torch.enable_grad():
                leaf = self._copies.clone().requires_grad_(True)
                self._graph = (leaf, self._g(leaf))
            self.passes += self.k
        return self._graph

    @property
    def outputs(self) -> int:
        """``m``, the number of outputs per item."""
        return self.graph[1][0].numel()

    def vjp(self, Y: Tensor) -> Tensor:
        leaf, out = self.graph
        (grad,) = torch.autograd.grad(out, leaf, self._stack(Y, out.shape[1:]), retain_graph=True)
        self.passes += self.k
        return self._unstack(grad, Y.shape[-1])

    def jvp(self, V: Tensor) -> Tensor:
        if not self._dual:
            try:
                return self._jvp_double_backward(V)
            except RuntimeError:  # an op without a double-backward formula: forward mode instead
                self._dual, self._transposed = True, None
        with torch.no_grad():
            _, tangent = torch.func.jvp(self._g, (self._copies,), (self._stack(V, self.shape),))
        self.passes += self.k
        return self._unstack(tangent, V.shape[-1])

    def _jvp_double_backward(self, V: Tensor) -> Tensor:
        if self._transposed is None:
            leaf, out = self.graph
            with torch.enable_grad():
                u = torch.zeros_like(out, requires_grad=True)
                (transposed,) = torch.autograd.grad(out, leaf, u, create_graph=True)
            self._transposed = (u, transposed)
            self.passes += self.k
        u, transposed = self._transposed
        (tangent,) = torch.autograd.grad(transposed, u, self._stack(V, self.shape), retain_graph=True)
        self.passes += self.k
        return self._unstack(tangent, V.shape[-1])


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
    (Hutchinson), from ``probes`` Jacobian–vector products per item in one forward-mode pass (:func:`torch.func.jvp`). Its
    relative standard deviation is at most :math:`\sqrt{2/\text{probes}}`, less when the spectrum is spread over many
    directions.

    ``deflate`` ``(B, d, k)`` with orthonormal columns :math:`V` (e.g. the top right singular vectors from
    :func:`jacobian_svd`): estimate only the rest, :math:`\|J(I - VV^\top)\|_F^2`, from probes projected off
    :math:`V` (so :math:`\|J\|_F^2 = \|JV\|_F^2 +` this, with the random error confined to the small tail; the idea of
    Hutch++, Meyer et al. 2021)."""
    x = check_batch(x, "x")
    probes = check_positive_int(probes, "probes")
    B, d = x.shape[0], math.prod(x.shape[1:])
    if deflate is not None and deflate.shape[:2] != (B, d):
        raise ValueError(f"deflate must have shape ({B}, {d}, k), got {tuple(deflate.shape)}")
    op = BatchedJacobian(f, x, t, probes, forward_mode=True)  # one pass, no graph to build
    Z = randn((B, d, probes), generator, x.dtype, x.device)
    if deflate is not None:
        Z = Z - deflate @ (deflate.transpose(-1, -2) @ Z)
    return (op.jvp(Z) ** 2).sum((1, 2)) / probes


class JacobianSVD(NamedTuple):
    """Top-``k`` singular triplets of each item's Jacobian, :math:`J \\approx U\\,\\mathrm{diag}(S)\\,V^\\top`."""

    U: Tensor  # (B, m, k) left singular vectors
    S: Tensor  # (B, k) singular values, descending
    V: Tensor  # (B, d, k) right singular vectors
    passes: int  # network passes used: one per direction per JVP or VJP, plus building the graphs
    iterations: int


def _orthonormal(Z: Tensor) -> Tensor:
    return torch.linalg.qr(Z).Q


def _orthonormal_against(Z: Tensor, Q: Tensor) -> Tensor:
    """Orthonormal basis of the part of ``Z`` orthogonal to ``Q``'s columns: two classical Gram–Schmidt passes, a QR,
    then one more pass and QR (one pass loses orthogonality in float32 when ``Z`` lies mostly inside ``span(Q)``,
    and the first QR magnifies what is left)."""
    for _ in range(2):
        Z = Z - Q @ (Q.transpose(-1, -2) @ Z)
    Z = _orthonormal(Z)
    return _orthonormal(Z - Q @ (Q.transpose(-1, -2) @ Z))


def subspace_sin(V: Tensor, W: Tensor) -> Tensor:
    r"""Sine of the largest principal angle between the column spans of ``V`` and ``W`` (both ``(..., d, k)``,
    orthonormal columns): :math:`\|(I - VV^\top)W\|_2`. Invariant to signs and rotations within the span. Computed
    from the residual, not as :math:`\sqrt{1 - \cos^2}`, which cannot resolve angles below ~5e-4 in float32."""
    residual = W - V @ (V.transpose(-1, -2) @ W)
    return torch.linalg.matrix_norm(residual, ord=2).clamp(max=1)


class _Krylov(NamedTuple):
    Q: Tensor  # (B, d, s) orthonormal basis of the search space
    JQ: Tensor  # (B, m, s) its image
    U: Tensor  # (B, m, s) left Ritz vectors
    S: Tensor  # (B, s) Ritz values, descending
    V: Tensor  # (B, d, s) right Ritz vectors, Q W
    iterations: int


def _block_krylov(
    op: BatchedJacobian | _MatrixProducts,
    V0: Tensor,
    max_iters: int,
    max_basis: int,
    done: Callable[[_Krylov], bool],
) -> _Krylov:
    """Block Krylov iteration on :math:`J^\\top J` from the block ``V0`` ``(B, d, b)``, with Rayleigh–Ritz on the
    whole search space every iteration (an SVD of :math:`JQ = U S W^\\top`). Stops when ``done(state)`` says so, when
    the space fills :math:`\\mathbb R^d`, or after ``max_iters``; past ``max_basis`` columns it restarts from the
    leading Ritz vectors (thick restart)."""
    d, b = V0.shape[1], V0.shape[2]
    blocks, images = [_orthonormal(V0)], []  # basis blocks Q_i and their images J Q_i
    for iteration in range(1, max_iters + 1):
        images.append(op.jvp(blocks[-1]))
        Q, JQ = torch.cat(blocks, -1), torch.cat(images, -1)
        U, S, Wt = torch.linalg.svd(JQ, full_matrices=False)  # J Q = U S W^T: Rayleigh–Ritz on span(Q)
        state = _Krylov(Q, JQ, U, S, Q @ Wt.transpose(-1, -2), iteration)
        if Q.shape[-1] >= d or done(state) or iteration == max_iters:
            break
        grown = op.vjp(images[-1])  # J^T J Q_i: the next Krylov block
        if Q.shape[-1] + b > max_basis and max_basis < d:  # thick restart: keep the leading Ritz vectors
            keep = min(Q.shape[-1], max_basis - b)
            blocks, images = [state.V[..., :keep]], [U[..., :keep] * S[..., None, :keep]]
            Q = blocks[0]
        blocks.append(_orthonormal_against(grown[..., : d - Q.shape[-1]], Q))
    return state


class _SubspaceSettled:
    """``done`` test of :func:`jacobian_svd`: the top-``k`` right Ritz subspace moved by less than ``tol`` (sine of
    the largest principal angle) since the last iteration, for every item."""

    def __init__(self, k: int, tol: float) -> None:
        self.k, self.tol, self.previous = k, tol, None

    def __call__(self, state: _Krylov) -> bool:
        top = state.V[..., : self.k]
        comparable = self.previous is not None and self.previous.shape[-1] == top.shape[-1]
        settled = comparable and bool((subspace_sin(self.previous, top) < self.tol).all())
        self.previous = top
        return settled


def jacobian_svd(
    f: Callable[..., Tensor],
    x: Tensor,
    t: float | Tensor | None,
    k: int,
    tol: float = 1e-4,
    max_iters: int = 100,
    generator: torch.Generator | None = None,
    block: int | None = None,
    mask: Tensor | None = None,
) -> JacobianSVD:
    r"""Top-``k`` singular triplets of the Jacobian of ``f`` at each item of ``x`` ``(B, *shape)``, matrix-free.

    With ``mask`` (for an ``f`` whose output has ``x``'s shape, such as a denoiser): the triplets of the masked
    Jacobian :math:`J_\Omega = P_\Omega J`, the rows of the outputs where ``mask`` is nonzero (:math:`\Omega`) and
    zeros elsewhere. ``mask`` broadcasts to ``x``'s shape (one item's shape, e.g. ``(H, W)`` for every channel, or
    ``(B, *shape)`` for one mask per item) and must select at least one output of every item.

    Block Krylov iteration on :math:`J^\top J` (the generalized power method that keeps every block it has made;
    Musco & Musco 2015): starting from a random orthonormal block :math:`Q_0` of ``block`` (default ``k``) columns,
    iteration ``i`` computes :math:`JQ_i` for all columns at once (one batched reverse pass through the graph of
    :math:`u \mapsto J^\top u`, see :class:`BatchedJacobian`), does Rayleigh–Ritz on the whole search space
    :math:`\mathcal Q = [Q_0, \dots, Q_i]` (an SVD of :math:`J\mathcal Q = U S W^\top`, so :math:`J \approx U S (\mathcal
    Q W)^\top` there), and grows the space by :math:`J^\top(JQ_i)` (one batched reverse pass), re-orthonormalized
    against :math:`\mathcal Q` by QR. It stops when the sine of the largest principal angle between the top-``k``
    right Ritz subspaces of two successive iterations is below ``tol`` for every item (signs and rotations inside
    the subspace do not count), or when the space fills :math:`\mathbb R^d`. Convergence is much faster than plain
    subspace iteration's :math:`(\sigma_{k+1}/\sigma_k)^{2i}`: it depends on the square root of the gap, and the
    returned subspace is usually far closer to the true one than the last step ``tol``. Past ``20 · block`` columns
    the space restarts from its leading Ritz vectors. A :class:`ClosedFormJacobian` denoiser runs the same iteration on
    its matrix, with no network passes.
    """
    check_callable(f, "f")
    x = check_batch(x, "x")
    k = check_positive_int(k, "k")
    check_positive(tol, "tol")
    max_iters = check_positive_int(max_iters, "max_iters")
    B, d = x.shape[0], math.prod(x.shape[1:])
    if k > d:
        raise ValueError(f"k must be at most d = {d}, got {k}")
    block = k if block is None else check_positive_int(block, "block")
    if block < k:
        raise ValueError(f"block must be at least k = {k}, got {block}")
    block = min(block, d)
    rows = None if mask is None else output_mask(mask, x)
    closed_form = _closed_form(f, t)
    if closed_form is not None:
        J = closed_form(x, t)
        op: BatchedJacobian | _MatrixProducts = _MatrixProducts(J if rows is None else J * rows.reshape(B, -1, 1))
    else:
        op = BatchedJacobian(f if rows is None else _masked(f, rows), x, t, block)
    V0 = randn((B, d, block), generator, x.dtype, x.device)
    run = _block_krylov(op, V0, max_iters, min(d, 20 * block), _SubspaceSettled(k, tol))
    return JacobianSVD(run.U[..., :k], run.S[..., :k], run.V[..., :k], op.passes, run.iterations)


def output_mask(mask: Tensor, x: Tensor) -> Tensor:
    """``mask`` as 0/1 weights of ``x``'s shape and dtype (nonzero entries are 1): it must be a tensor that
    broadcasts to ``x``'s shape ``(B, *shape)`` and selects at least one entry of every item."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    try:
        rows = (mask != 0).to(dtype=x.dtype, device=x.device).expand(x.shape)
    except RuntimeError:
        raise ValueError(f"mask must broadcast to x's shape {tuple(x.shape)}, got shape {tuple(mask.shape)}") from None
    empty = rows.reshape(len(x), -1).sum(1) == 0
    if bool(empty.any()):
        raise ValueError(f"mask selects no entry of item(s) {empty.nonzero()[:, 0].tolist()}")
    return rows


def _masked(f: Callable[..., Tensor], rows: Tensor) -> Callable[..., Tensor]:
    """``(z, *t) -> rows ⊙ f(z, *t)``, with ``rows`` ``(B, *shape)`` repeated over stacked copies of the batch."""
    batch = rows.shape[0]

    def g(z: Tensor, *t) -> Tensor:
        out = f(z, *t)
        return out * rows.repeat(out.shape[0] // batch, *([1] * (out.dim() - 1)))

    return g


def effective_rank(S: Tensor, energy: float = 0.99, total: Tensor | None = None) -> Tensor:
    r"""Smallest :math:`r` with :math:`\sum_{i\le r}\sigma_i^2 \ge \text{energy}^2 \sum_i \sigma_i^2`, per row of
    ``S`` ``(..., k)`` (singular values in descending order): ``energy`` is the fraction of the *norm*
    :math:`(\sum_i\sigma_i^2)^{1/2}` kept, as in the tutorial's rank at 0.99 (for a fraction of the variance, as
    in PCA, pass its square root). The same ``energy`` means the same everywhere in :mod:`lowdim`.

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
    with torch.no_grad():
        fx, Jdx = (z.reshape(len(x), -1) for z in torch.func.jvp(g, (x,), (direction,)))
    ratios, cosines = [], []
    with torch.no_grad():
        for lam in lambdas:
            moved = g(x + lam * direction).reshape(len(x), -1)
            linear = fx + lam * Jdx
            ratios.append(moved.norm(dim=1) / linear.norm(dim=1))
            cosines.append(torch.nn.functional.cosine_similarity(moved, linear, dim=1))
    return torch.stack(ratios, 1), torch.stack(cosines, 1)


class _EnergyRank:
    r"""``done`` test of :func:`point_ranks`' top-``k`` route: decides each item's rank by energy as its Krylov space
    grows, and keeps the decisions in ``rank`` (``k + 1``: more than ``k``).

    The total :math:`\|J\|_F^2 = \|JQ\|_F^2 + \|J(I - QQ^\top)\|_F^2` is estimated afresh for every space ``Q``:
    the first part is exact (the Ritz values); the tail is :math:`\mathbb E_y\|(I - QQ^\top)J^\top y\|^2`,
    :math:`y \sim \mathcal N(0, I_m)`, estimated from ``probes`` reverse passes :math:`J^\top Y` made once and projected
    off each new ``Q`` at no extra pass, so the random error shrinks with the tail (the idea of Hutch++, Meyer et al.
    2021; reverse passes cost about a third of the Krylov step's products with :math:`J`). With the Ritz values
    :math:`\theta_1 \ge \dots \ge \theta_s` (lower bounds of the singular values, growing with the space) and the
    level :math:`L = \text{energy}^2\,\widehat{\|J\|_F^2}`, an item is decided

    - at rank :math:`r \le k`, the smallest :math:`r` with :math:`\sum_{i \le r}\theta_i^2 \ge L`, once the top
      :math:`r - 1` Ritz energy falls short of :math:`L` by more than ``extrapolate`` times what it gained in the
      last iteration (Krylov convergence is about geometric, so what is still to come is about the last gain or less);
    - as "more than ``k``" once the space holds ``k`` columns and the top-``k`` Ritz energy falls short of :math:`L`
      in the same way.

    Fewer than ``k`` columns can never show the rank is above ``k``: the energy not yet found might sit in the few
    directions still missing, and a few random probes cannot tell that from energy spread thinly over many.
    """

    extrapolate = 2.0

    def __init__(
        self, op: BatchedJacobian, k: int, energy: float, probes: int, generator: torch.Generator | None
    ) -> None:
        self.k, self.level = k, energy**2
        B = op.batch
        Y = randn((B, op.outputs, probes), generator, op.dtype, op.device)
        self.JtY = torch.cat([op.vjp(Y[..., i : i + op.k]) for i in range(0, probes, op.k)], -1)  # (B, d, probes)
        self.rank = torch.full((B,), k + 1, dtype=torch.long, device=op.device)
        self.decided = torch.zeros(B, dtype=torch.bool, device=op.device)
        self._previous: Tensor | None = None  # last iteration's cumulative Ritz energies

    def _estimate(self, state: _Krylov) -> tuple[Tensor, Tensor, Tensor]:
        """Rank estimate ``(B,)``, cumulative Ritz energies with a leading zero ``(B, s + 1)`` and the level ``(B,)``."""
        power = state.S.double() ** 2
        tail = self.JtY - state.Q @ (state.Q.transpose(-1, -2) @ self.JtY)  # (I - QQ^T) J^T Y
        level = self.level * (power.sum(-1) + (tail.double() ** 2).sum((1, 2)) / self.JtY.shape[-1])
        cumulative = torch.nn.functional.pad(power.cumsum(-1), (1, 0))
        return effective_rank(state.S, 1.0, total=level), cumulative, level

    def __call__(self, state: _Krylov) -> bool:
        estimate, cumulative, level = self._estimate(state)
        if self._previous is not None:
            # the rank would drop below the estimate (or reach k) only if the energy of the top j = min(estimate, k + 1)
            # - 1 Ritz values reached the level: decide when the shortfall exceeds `extrapolate` times their last gain
            j = (estimate.clamp(max=self.k + 1) - 1)[:, None]
            now = cumulative.gather(-1, j)[:, 0]
            before = self._previous.gather(-1, j.clamp(max=self._previous.shape[-1] - 1))[:, 0]
            stalled = level - now > self.extrapolate * (now - before)
            settled = stalled & (estimate <= min(self.k, state.S.shape[-1]))  # s + 1 reads "more than s"
            beyond = stalled & (estimate > self.k) & (state.S.shape[-1] >= self.k)
            new = ~self.decided & (settled | beyond)
            self.rank = torch.where(new & settled, estimate, self.rank)
            self.decided |= new
        self._previous = cumulative
        return bool(self.decided.all())

    def finish(self, state: _Krylov) -> Tensor:
        """Ranks ``(B,)``, the undecided items from the last space's estimate."""
        estimate = self._estimate(state)[0].clamp(max=self.k + 1)
        return torch.where(self.decided, self.rank, estimate)


def point_ranks(
    D: Callable[..., Tensor],
    x: Tensor,
    t: float,
    energy: float = 0.99,
    k: int | None = None,
    probes: int = 16,
    max_iters: int | None = None,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    block: int = 8,
) -> Tensor:
    r"""Rank by energy ``(B,)`` of the Jacobian of ``D(·, t)`` at each item of ``x``.

    ``k=None``: exactly, from the singular values of the full Jacobian (:func:`jacobian`, one item at a time when
    :math:`d` is large). ``k`` an int: without the full Jacobian, from a block Krylov space on :math:`J^\top J` (as in
    :func:`jacobian_svd`, ``block`` directions per pass) that grows until every item is decided (``_EnergyRank``:
    a rank :math:`\le k` that stopped moving, or clearly more than ``k``), or until it holds :math:`1.5k` columns
    (``max_iters`` iterations if given). The total energy :math:`\|J\|_F^2` is exact inside the space and estimated
    outside it from ``probes`` probes (:func:`frobenius_sq`'s estimator, deflated). Ritz values never exceed the
    singular values, so apart from that small random tail the rank can only come out high. A rank above ``k`` is
    reported as ``k + 1``. A denoiser with a closed-form Jacobian always takes the exact route.
    """
    x = check_batch(x, "x")
    d = math.prod(x.shape[1:])
    if k is None or _closed_form(D, t) is not None:
        per_call = max(1, 2**24 // (d * d))  # at most 16 M Jacobian entries in memory at once
        S = torch.cat([torch.linalg.svdvals(jacobian(D, x[i : i + per_call], t, chunk_size=chunk_size))
                       for i in range(0, len(x), per_call)])  # fmt: skip
        return effective_rank(S, energy)
    k = min(check_positive_int(k, "k"), d)
    block = min(check_positive_int(block, "block"), d)
    if not 0 < energy <= 1:
        raise ValueError(f"energy must lie in (0, 1], got {energy}")
    max_iters = max(2, math.ceil(1.5 * k / block)) if max_iters is None else check_positive_int(max_iters, "max_iters")
    op = BatchedJacobian(D, x, t, block)
    test = _EnergyRank(op, k, energy, check_positive_int(probes, "probes"), generator)
    # start from J^T Omega, a random block already weighted by the singular values, for `block` cheap reverse passes
    V0 = op.vjp(randn((op.batch, op.outputs, block), generator, op.dtype, op.device))
    return test.finish(_block_krylov(op, V0, max_iters, min(d, max(20 * block, 2 * k)), test))
