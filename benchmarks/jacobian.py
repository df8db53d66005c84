"""Benchmark: denoiser Jacobians with lowdim's batched routes vs plain torch.autograd baselines.

    python benchmarks/jacobian.py          # d = 3072 (3 x 32 x 32), writes benchmarks/results/jacobian.md; ~30 min
    python benchmarks/jacobian.py --quick  # d = 768 (3 x 16 x 16), fewer points, writes nothing; under a minute

Four comparisons, in one process, float32, on the conv denoiser ``data/checkpoints/shapes_unet_n8192.pt`` (a
random-init ``UNetDenoiser`` with the same architecture when the file is missing; ``--quick`` loads the same weights
into a 16 x 16 U-Net):

1. Full Jacobian at one point (t = 0.5): ``lowdim.jacobian`` (one forward pass on ``chunk_size`` stacked copies,
   then one plain reverse pass per ``chunk_size`` rows; several ``chunk_size``) vs ``torch.autograd.functional.jacobian`` (one forward, one reverse pass per output row), timed
   round-robin (a warm-up round, then ``--repeats`` rounds; best time kept). Achieved GFLOP/s: forward FLOPs F
   counted by ``FlopCounterMode`` (convolutions and matmuls), a reverse pass taken as 2F, so a full Jacobian is about
   d * 2F + F; printed next to a 4096 x 4096 float32 matmul's.
2. Top-8 right singular subspace at equal accuracy (subspace distance < 1e-3 to the full SVD's): ``jacobian_svd``
   (the largest ``tol`` of a ladder that meets the accuracy) vs per-vector block power iteration (JV by
   ``torch.func.jacfwd`` over the 8 directions, then J^T(JV) by ``torch.autograd.functional.jacobian`` of the 8
   inner products <(JV)_i, f(x)> with the un-normalised columns (JV)_i, then an SVD; stops once successive bases are
   allclose at atol 1e-4 after at least 10 and at most 50 iterations) and vs full Jacobian + SVD (the full Jacobian
   by ``torch.autograd.functional.jacobian``; the ratio against ``lowdim.jacobian`` + SVD is printed too).
3. Rank by energy (0.99) for a rank-ratio curve of ``--times`` t in [0.05, 0.95] x ``--draws`` noise draws of one
   clean image: ``point_ranks`` top-k (block Krylov space + deflated Hutchinson tail; all draws of one t in one
   call) vs the exact route (``torch.autograd.functional.jacobian`` + svdvals; ``lowdim``'s exact route is timed
   too) on a spot-checked subset, whose mean time per point is extrapolated to the whole curve.
4. MoLRG denoiser (d = 3072, K = 4, r = 16): closed-form Jacobian vs ``torch.autograd.functional.jacobian``, item
   by item, and vs ``lowdim.jacobian`` through autograd.

Model weights are frozen (``requires_grad_(False)``) for every route: the Jacobian is with respect to the input only.
The machine may be shared: before each timed run the script waits (15 min in all at most) until other processes are
idle, measures the cores they take during the run and reruns once when that is more than 0.3 (see ``SharedCpu``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

import lowdim
from lowdim.jacobian import BatchedJacobian, JacobianSVD, point_ranks

JACOBIAN_MODULE = sys.modules["lowdim.jacobian"]  # the module; the attribute lowdim.jacobian is the function

Tensor = torch.Tensor
CHECKPOINT = Path("data/checkpoints/shapes_unet_n8192.pt")
RESULTS = Path("benchmarks/results/jacobian.md")
SCHEDULE = lowdim.VP()


@dataclass
class Row:
    comparison: str
    ours: str
    baseline: str
    ratio: float
    target: float | None
    passes: str
    accuracy: str

    def cells(self) -> list[str]:
        target = (
            "-" if self.target is None else f"≥ {self.target:g}x ({'met' if self.ratio >= self.target else 'missed'})"
        )
        return [self.comparison, self.ours, self.baseline, f"{self.ratio:.1f}x", target, self.passes, self.accuracy]


HEADER = ["comparison", "ours", "baseline", "ratio", "target", "passes (ours / baseline)", "accuracy"]


# --------------------------------------------------------------------------------------------------------- helpers


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class SharedCpu:
    """The machine is shared with other jobs, and a busy neighbour slows fine-grained work (many small kernels, each
    a parallel region) far more than large batched kernels. So before each timed run wait, within a total budget,
    until other processes have been idle for a second; measure the cores they took during the run (from
    ``/proc/stat`` minus our own CPU time) and run again, up to ``retries`` times, when that exceeds ``idle_cores``."""

    def __init__(self, idle_cores: float = 0.3, budget_s: float = 900.0, retries: int = 1) -> None:
        self.idle_cores, self.budget_s, self.retries = idle_cores, budget_s, retries
        self.waited_s = 0.0
        self.others: list[float] = []  # cores taken by other processes during each kept run

    @staticmethod
    def _busy_s() -> float:
        try:
            ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except OSError:
            return math.nan
        user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    def _run(self, fn: Callable[[], Any]) -> tuple[float, float, Any]:
        busy, own, start = self._busy_s(), time.process_time(), time.perf_counter()
        out = fn()
        wall = time.perf_counter() - start
        others = (self._busy_s() - busy - (time.process_time() - own)) / wall
        return wall, max(others, 0.0), out

    def wait_idle(self) -> None:
        while self.waited_s < self.budget_s:
            wall, others, _ = self._run(lambda: time.sleep(1.0))
            self.waited_s += wall
            if not others >= self.idle_cores:  # also stops on nan (no /proc/stat)
                return

    def clock(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        """Wall time of ``fn()`` (the fastest of the attempts) and its output."""
        best: tuple[float, float, Any] | None = None
        for _ in range(1 + self.retries):
            self.wait_idle()
            run = self._run(fn)
            best = run if best is None or run[0] < best[0] else best
            if not run[1] >= self.idle_cores:
                break
        self.others.append(best[1])
        return best[0], best[2]

    def summary(self) -> str:
        valid = [o for o in self.others if not math.isnan(o)]
        if not valid:
            return "other processes' CPU use not measured"
        mean, worst = sum(valid) / len(valid), max(valid)
        return (
            f"waited {self.waited_s:.0f} s for other processes to go idle; they took {mean:.2f} cores on average"
            f" (at most {worst:.2f}) during the {len(valid)} kept timed runs"
        )


CPU = SharedCpu()


def clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    return CPU.clock(fn)


def race(routes: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> tuple[dict[str, float], dict]:
    """Best wall time of each route over ``repeats`` round-robin rounds after ``warmup`` rounds, and each route's
    last output. Interleaving spreads load from other processes over all routes."""
    times: dict[str, list[float]] = {name: [] for name in routes}
    outputs: dict[str, Any] = {}
    for round_ in range(warmup + repeats):
        for name, fn in routes.items():
            if round_ < warmup:
                outputs[name] = fn()
            else:
                elapsed, outputs[name] = clock(fn)
                times[name].append(elapsed)
    return {name: min(ts) for name, ts in times.items()}, outputs


def seconds(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.1f} s"


def matmul_gflops(n: int = 4096, repeats: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best, _ = race({"mm": lambda: a @ b}, repeats)
    return 2 * n**3 / best["mm"] / 1e9


def forward_flops(f: Callable[[Tensor], Tensor], x: Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        f(x)
    return counter.get_total_flops()


def load_denoiser(shape: tuple[int, int, int]) -> tuple[lowdim.UNetDenoiser, str]:
    """The trained shapes U-Net (its convolutions run at any image size), or a seeded random init if it is missing."""
    if CHECKPOINT.exists():
        trained, _ = lowdim.load_checkpoint(CHECKPOINT)
        model = lowdim.UNetDenoiser(shape, trained.schedule, channels=tuple(trained.config["channels"]))
        model.load_state_dict(trained.state_dict())
        source = f"trained `{CHECKPOINT}`"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = lowdim.UNetDenoiser(shape, SCHEDULE, channels=(16, 32, 32))
        source = f"RANDOM-INIT UNetDenoiser (seed 0; `{CHECKPOINT}` missing)"
    return model.float().eval().requires_grad_(False), source


def noisy_points(shape: tuple[int, int, int], t: float, n: int, seed: int) -> Tensor:
    """``n`` noise draws at time ``t`` of the first clean ``shapes`` image (``n`` may be 1)."""
    x0 = lowdim.shapes(1, size=shape[1], generator=torch.Generator().manual_seed(1), dtype=torch.float32)[0]
    return lowdim.perturb(x0.expand(n, *shape), t, SCHEDULE, generator=torch.Generator().manual_seed(seed))[0]


@contextlib.contextmanager
def counting_operators() -> Iterator[list[BatchedJacobian]]:
    """Collect the :class:`BatchedJacobian` operators ``lowdim.jacobian``'s functions build, whose ``passes`` count
    every pass they make (hooks on the network's output would miss the double-backward passes)."""
    created: list[BatchedJacobian] = []

    class Recorded(BatchedJacobian):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    with mock.patch.object(JACOBIAN_MODULE, "BatchedJacobian", Recorded):
        yield created


# ------------------------------------------------------------------------------------------ 1. full Jacobian


@dataclass
class FullJacobian:
    J: Tensor  # (m, d)
    seconds: float  # torch.autograd.functional.jacobian's time (the baseline for sections 2 and 3)
    ours_seconds: float  # lowdim.jacobian's best time
    chunk_size: int | None  # our best chunk size
    row: Row
    gflops_line: str


def full_jacobian(model: Callable, x: Tensor, t: float, chunks: list[int | None], repeats: int) -> FullJacobian:
    d = x[0].numel()
    routes: dict[str, Callable[[], Tensor]] = {
        "torch": lambda: torch.autograd.functional.jacobian(lambda z: model(z, t), x).reshape(d, d)
    }
    for c in chunks:
        routes[f"ours chunk={c}"] = lambda c=c: lowdim.jacobian(model, x, t, chunk_size=c)[0]
    best, outputs = race(routes, repeats)
    for name, s in best.items():
        print(f"  full Jacobian, {name:<18} {seconds(s):>9}")
    ours_name = min((n for n in best if n != "torch"), key=best.get)
    chunk = next(c for c in chunks if f"ours chunk={c}" == ours_name)
    J, J_ref = outputs[ours_name], outputs["torch"]
    err = (J - J_ref).abs().max().item()

    flop = forward_flops(lambda z: model(z, t), x)
    total = d * 2 * flop + flop
    mm = matmul_gflops()
    gf_ours, gf_torch = total / best[ours_name] / 1e9, total / best["torch"] / 1e9
    gflops_line = (
        f"Full Jacobian at d = {d}: forward pass {flop / 1e6:.1f} MFLOP (FlopCounterMode), Jacobian ≈ d·2F + F ="
        f" {total / 1e9:.0f} GFLOP; achieved {gf_ours:.1f} GFLOP/s (ours, chunk_size={chunk}) and {gf_torch:.1f}"
        f" GFLOP/s (torch.autograd.functional.jacobian) vs {mm:.0f} GFLOP/s for a 4096² float32 matmul."
    )
    copies = chunk or math.ceil(d / math.ceil(d / max(1, min(d, 2**17 // d))))  # lowdim.jacobian's default
    calls = math.ceil(d / copies)
    row = Row(
        f"full Jacobian, conv U-Net d={d}, 1 point (best chunk_size={chunk}: {copies} copies)",
        seconds(best[ours_name]),
        f"{seconds(best['torch'])} (autograd.functional.jacobian)",
        best["torch"] / best[ours_name],
        1.0,
        f"{copies}+{calls * copies} in {1 + calls} calls / 1+{d} in {1 + d} calls",
        f"max abs diff {err:.1e}",
    )
    return FullJacobian(J, best["torch"], best[ours_name], chunk, row, gflops_line)


# -------------------------------------------------------------------------------------------- 2. top-8 subspace


def power_iteration_baseline(
    model: Callable,
    x: Tensor,
    t: float,
    V: Tensor,
    min_iters: int = 10,
    max_iters: int = 50,
    atol: float = 1e-4,
    mask: Tensor | None = None,
) -> tuple[Tensor, int, bool]:
    """Per-vector block power iteration on J^T J from the orthonormal ``V`` (d, k), as the issue defines it (as
    LOCO Edit's code does it); with ``mask`` (0/1, ``x``'s shape) on the masked Jacobian P_Omega J.

    Returns the last basis, the iterations and whether the allclose test stopped it (rather than the cap)."""
    k = V.shape[1]
    rows = torch.ones_like(x) if mask is None else mask

    def f(z: Tensor) -> Tensor:
        return (rows * model(z, t)).reshape(-1)

    for it in range(1, max_iters + 1):
        JV = torch.func.jacfwd(lambda c, V=V: f(x + (V @ c).reshape(x.shape)))(x.new_zeros(k))
        JtJV = torch.autograd.functional.jacobian(lambda z, U=JV: U.T @ f(z), x).reshape(k, -1).T
        V_next = torch.linalg.svd(JtJV, full_matrices=False).U
        done = it >= min_iters and torch.allclose(V_next, V, atol=atol)
        V = V_next
        if done:
            return V, it, True
    return V, max_iters, False


def top_subspace(
    model: Callable, x: Tensor, t: float, full: FullJacobian, k: int, target: float, repeats: int, seed: int
) -> list[Row]:
    d = x[0].numel()
    svd_seconds, (_, S, Vh) = clock(lambda: torch.linalg.svd(full.J, full_matrices=False))
    V_exact = Vh[:k].T
    print(f"  SVD of the {d}x{d} Jacobian: {seconds(svd_seconds)}; sigma_{k}/sigma_{k + 1} = {S[k - 1] / S[k]:.4f}")

    def ours(tol: float) -> JacobianSVD:
        return lowdim.jacobian_svd(
            model, x, t, k=k, tol=tol, max_iters=200, generator=torch.Generator().manual_seed(seed)
        )

    tol, res = None, None
    for tol in (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5):  # the largest tol that meets the accuracy target
        res = ours(tol)
        dist = lowdim.subspace_distance(V_exact, res.V[0]).item()
        print(f"  jacobian_svd tol={tol:g}: {res.iterations} iterations, distance {dist:.1e}")
        if dist < target:
            break
    best, _ = race({"ours": lambda: ours(tol)}, repeats, warmup=0)
    t_ours = best["ours"]
    dist_ours = lowdim.subspace_distance(V_exact, res.V[0]).item()

    start = torch.linalg.qr(torch.randn(d, k, generator=torch.Generator().manual_seed(seed))).Q  # ours' start too
    t_base, (V_base, iters, stopped) = clock(lambda: power_iteration_baseline(model, x, t, start))
    dist_base = lowdim.subspace_distance(V_exact, V_base).item()
    print(f"  power iteration: {iters} iterations ({'allclose' if stopped else 'cap'}), distance {dist_base:.1e}")
    t_full, t_full_ours = full.seconds + svd_seconds, full.ours_seconds + svd_seconds
    passes_base = iters * (2 * k + 1)  # k forward-mode passes (jacfwd), then 1 forward + k reverse (jacobian)
    accuracy = f"distance {dist_ours:.1e} / {dist_base:.1e} (< {target:g} {'met' if dist_base < target else 'missed'})"
    return [
        Row(
            f"top-{k} subspace vs per-vector power iteration (ours tol={tol:g})",
            f"{seconds(t_ours)}, {res.iterations} it",
            f"{seconds(t_base)}, {iters} it ({'allclose' if stopped else 'hit cap'})",
            t_base / t_ours,
            5.0,
            f"{res.passes} / {passes_base}",
            accuracy,
        ),
        Row(
            f"top-{k} subspace vs full Jacobian + SVD",
            seconds(t_ours),
            f"{seconds(full.seconds)} + {seconds(svd_seconds)} SVD (autograd.functional.jacobian)",
            t_full / t_ours,
            30.0,
            f"{res.passes} / {1 + d}",
            f"distance {dist_ours:.1e} / exact; {t_full_ours / t_ours:.1f}x vs lowdim.jacobian + SVD",
        ),
    ]


# ------------------------------------------------------------------------------------------------ 3. rank curve


@dataclass
class SpotCheck:
    index: int  # into the curve's times
    exact: int  # rank of draw 0
    seconds: float  # torch.autograd.functional.jacobian + svdvals
    ours_seconds: float  # lowdim's exact route (lowdim.jacobian + svdvals)


def spot_checks(
    model: Callable, times: list[float], points: list[Tensor], indices: list[int], chunk: int | None
) -> list[SpotCheck]:
    """Exact ranks (full Jacobian + svdvals, both routes) of draw 0 at the curve's ``indices``."""
    checks = []
    for i in indices:
        x, t = points[i][:1], times[i]
        s_ours, exact = clock(lambda x=x, t=t: point_ranks(model, x, t, k=None, chunk_size=chunk))
        s, S = clock(lambda x=x, t=t: torch.linalg.svdvals(
            torch.autograd.functional.jacobian(lambda z: model(z, t), x).reshape(x[0].numel(), -1)))  # fmt: skip
        assert int(lowdim.effective_rank(S)) == int(exact), "the two exact routes disagree"
        checks.append(SpotCheck(i, int(exact), s, s_ours))
        print(f"  exact rank at t={t:.3f} (draw 0): {int(exact)} in {seconds(s)} (torch), {seconds(s_ours)} (lowdim)")
    return checks


@dataclass
class FastCurve:
    k: int
    ranks: Tensor  # (T, draws), k + 1 = "more than k"
    seconds: float
    passes: int  # network passes, all points


def fast_curve(
    model: Callable, times: list[float], points: list[Tensor], k: int, args: argparse.Namespace
) -> FastCurve:
    def one_time(i: int) -> tuple[Tensor, int]:  # fresh counts per attempt: a rerun must not count twice
        with counting_operators() as operators:
            ranks = point_ranks(model, points[i], times[i], k=k, probes=args.probes, max_iters=args.rank_iters,
                                block=args.block, generator=torch.Generator().manual_seed(200 + i))  # fmt: skip
        return ranks, sum(op.passes for op in operators) * len(points[i])  # passes count directions per item

    t_curve, ranks, passes = 0.0, [], 0
    for i in range(len(times)):  # timed per t, so that a busy neighbour costs one rerun of one t at most
        elapsed, (r, p) = clock(lambda i=i: one_time(i))
        t_curve, passes = t_curve + elapsed, passes + p
        ranks.append(r)
    ranks = torch.stack(ranks)
    print(f"  rank curve, k={k} ({seconds(t_curve)}; ranks > k shown as >{k}):")
    for t, r in zip(times, ranks):
        shown = ", ".join(f">{k}" if v > k else str(v) for v in r.tolist())
        print(f"    t={t:.3f}: [{shown}]")
    return FastCurve(k, ranks, t_curve, passes)


def curve_row(curve: FastCurve, times: list[float], d: int, args: argparse.Namespace, checks: list[SpotCheck]) -> Row:
    k, ranks = curve.k, curve.ranks
    errors, flagged = [], 0
    for c in checks:
        fast = int(ranks[c.index, 0])
        if fast > k and c.exact > k:  # the fast route rightly says "more than k"
            flagged += 1
        else:
            errors.append(abs(fast - c.exact) / d)
        print(f"  k={k}, t={times[c.index]:.3f}: exact {c.exact}, fast {f'>{k}' if fast > k else fast}")
    worst = max(errors, default=float("nan"))
    per_point = sum(c.seconds for c in checks) / len(checks)
    per_point_ours = sum(c.ours_seconds for c in checks) / len(checks)
    n = ranks.numel()
    t_base = per_point * n
    verdict = "met" if worst <= 0.02 else "missed"
    within = f"max abs err {worst:.2%} of d (≤ 2 % {verdict})" if errors else "none ≤ k"
    iters = "≤ 1.5k columns" if args.rank_iters is None else f"≤{args.rank_iters} it"
    return Row(
        f"rank curve, {len(times)} t x {ranks.shape[1]} draws, k={k} (block {args.block}, {args.probes} probes, {iters})",
        seconds(curve.seconds),
        f"{seconds(t_base)} (extrapolated: {seconds(per_point)}/point x {n}; lowdim exact"
        f" {seconds(per_point_ours)}/point: {per_point_ours * n / curve.seconds:.1f}x)",
        t_base / curve.seconds,
        20.0,
        f"{curve.passes / n:.0f} / {1 + d} per point",
        f"{len(checks)} spot points: {len(errors)} ≤ k or misflagged, {within}; {flagged} rightly flagged > k;"
        f" {(ranks > k).float().mean():.0%} of the curve > k",
    )


def rank_section(
    model: Callable, shape: tuple[int, int, int], args: argparse.Namespace, chunk: int | None
) -> list[Row]:
    """Fast curves for each k; then exact ranks at ``--spot`` times spread over the curve and at up to ``--spot-low``
    more, the times where the largest k's curve resolves most draws (so the reported ranks themselves are checked)."""
    times = torch.linspace(0.05, 0.95, args.times).tolist()
    points = [noisy_points(shape, t, args.draws, seed=100 + i) for i, t in enumerate(times)]
    curves = [fast_curve(model, times, points, k, args) for k in args.k]
    spread = torch.linspace(0, len(times) - 1, args.spot).round().long().unique().tolist()
    widest = curves[-1]
    resolved = (widest.ranks[:, 0] <= widest.k).nonzero()[:, 0].tolist()
    resolved.sort(key=lambda i: -int((widest.ranks[i] <= widest.k).sum()))
    low = [i for i in resolved if i not in spread][: args.spot_low]
    checks = spot_checks(model, times, points, sorted(spread + low), chunk)
    return [curve_row(curve, times, shape[0] * shape[1] * shape[2], args, checks) for curve in curves]


# ------------------------------------------------------------------------------------------------- 4. MoLRG


def molrg(d: int, repeats: int, batch: int = 4, K: int = 4, r: int = 16) -> Row:
    model = lowdim.random_molrg(d, K, r, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    x0, _ = model.sample(batch, generator=torch.Generator().manual_seed(4))
    x, _ = lowdim.perturb(x0, 0.5, SCHEDULE, generator=torch.Generator().manual_seed(5))
    D = model.denoiser(SCHEDULE)

    def torch_route() -> Tensor:  # one reverse pass per output row, item by item
        rows = [torch.autograd.functional.jacobian(lambda z: model.posterior_mean(z[None], 0.5, SCHEDULE)[0], item)
                for item in x]  # fmt: skip
        return torch.stack(rows)

    best, out = race(
        {
            "closed": lambda: lowdim.jacobian(D, x, 0.5),
            "torch": torch_route,
            "autograd": lambda: lowdim.jacobian(lambda z, s: model.posterior_mean(z, s, SCHEDULE), x, 0.5),
        },
        repeats,
    )
    err = max((out["closed"] - out[n]).abs().max().item() / out[n].abs().max().item() for n in ("torch", "autograd"))
    return Row(
        f"MoLRG Jacobian d={d}, K={K}, r={r}, {batch} points",
        f"{seconds(best['closed'])} (closed form)",
        f"{seconds(best['torch'])} (autograd.functional.jacobian; lowdim.jacobian autograd"
        f" {seconds(best['autograd'])}: {best['autograd'] / best['closed']:.1f}x)",
        best["torch"] / best["closed"],
        20.0,
        f"0 / {batch}·(1+{d})",
        f"max rel diff {err:.1e}",
    )


# --------------------------------------------------------------------------------------------------------- main


def markdown(rows: list[Row], header: str, notes: list[str]) -> str:
    lines = [header, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |" for row in rows]
    return "\n".join([*lines, "", *notes, ""])


def plain(rows: list[Row]) -> str:
    table = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="d = 768 and fewer points: a fast smoke test")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds after the warm-up (default 2, quick 1)")
    p.add_argument("--k", type=int, nargs="+", default=None, help="top-k of the rank route (default 32 64, quick 32)")
    p.add_argument("--probes", type=int, default=None, help="Hutchinson probes of the rank route (default 32)")
    p.add_argument("--rank-iters", type=int, default=None, help="Krylov max_iters inside point_ranks (default: 1.5k)")
    p.add_argument("--block", type=int, default=8, help="Krylov block inside point_ranks (default 8)")
    p.add_argument("--times", type=int, default=None, help="values of t on the rank curve (default 20, quick 4)")
    p.add_argument("--draws", type=int, default=None, help="noise draws per t (default 8, quick 4)")
    p.add_argument("--spot", type=int, default=None, help="spot-checked exact points (default 6, quick 2)")
    p.add_argument("--spot-low", type=int, default=None, help="more spot points where ranks <= k (default 3, quick 1)")
    p.add_argument("--output", type=Path, default=None, help=f"Markdown table (default {RESULTS}; quick: none)")
    args = p.parse_args()
    quick = args.quick
    defaults = {"repeats": (2, 1), "k": ([32, 64], [32]), "probes": (16, 16), "times": (20, 4), "draws": (8, 4),
                "spot": (6, 2), "spot_low": (3, 1)}  # fmt: skip
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.output is None and not quick:
        args.output = RESULTS
    return args


def load_average() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main() -> None:
    args = parse()
    begin = time.perf_counter()
    shape = (3, 16, 16) if args.quick else (3, 32, 32)
    d = math.prod(shape)
    chunks: list[int | None] = [None, 16, 64] if not args.quick else [None, 16]
    machine = f"{cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    command = shlex.join(["python", *sys.argv])
    load_start = load_average()
    print(f"{machine}; load average {load_start}")
    model, source = load_denoiser(shape)
    print(f"denoiser: {source}, d = {d}")

    def section(title: str) -> None:  # other processes' load skews timings: log it with each section
        print(f"{title}  [{time.perf_counter() - begin:.0f} s in, load average {load_average()}]")

    t = 0.5
    x = noisy_points(shape, t, 1, seed=2)
    section("1. full Jacobian")
    full = full_jacobian(model, x, t, chunks, args.repeats)
    print("  " + full.gflops_line)
    section("2. top-8 subspace")
    rows = [full.row, *top_subspace(model, x, t, full, 8, 1e-3, args.repeats, seed=7)]
    section("3. rank by energy")
    rows += rank_section(model, shape, args, full.chunk_size)
    section("4. MoLRG closed form")
    rows.append(molrg(d, args.repeats + 1))
    section("done")

    print()
    print(plain(rows))
    print(full.gflops_line)
    print(CPU.summary())
    if args.output is not None:
        stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        header = (
            f"Machine: {machine}; {stamp}; `{command}` ({time.perf_counter() - begin:.0f} s). Denoiser: {source},"
            f" float32, d = {d}, weights frozen. Times are the best of {args.repeats} timed run(s) after a warm-up"
            " (one run for the power iteration, the rank curves and the exact spot checks). The machine is shared:"
            f" load average {load_start} at the start, {load_average()} at the end; {CPU.summary()}."
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown(rows, header, [full.gflops_line]))
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
