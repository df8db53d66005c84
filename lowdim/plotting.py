"""Figures (matplotlib): the figure layer on top of :mod:`lowdim` and :mod:`lowdim.experiments`, imported by nothing
below it. Each function draws on an ``ax`` (or ``axes``) or returns a new figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .experiments.memorization import MemorizationSweep
from .experiments.phase import PhaseTransition
from .experiments.reproducibility import ReproducibilitySweep, seed_spread
from .experiments.students import TeacherStudent
from .schedules import Schedule

Tensor = torch.Tensor


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_schedules(schedules: Mapping[str, Schedule], axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
    r"""Three panels: :math:`\alpha_t`, :math:`\beta_t` (log scale) and :math:`g(t)` (log scale) for each schedule."""
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
    fig = axes[0].figure
    t = torch.linspace(0, 1, 401, dtype=torch.float64)
    for name, s in schedules.items():
        axes[0].plot(_np(t), _np(s.alpha(t)), label=name)
        axes[1].plot(_np(t[1:]), _np(s.beta(t[1:])), label=name)
        axes[2].plot(_np(t), _np(s.diffusion(t)), label=name)
    for ax, title in zip(axes, (r"$\alpha_t$", r"$\beta_t$", r"$g(t)$")):
        ax.set_title(title)
        ax.set_xlabel("$t$")
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend()
    return fig


def plot_points(ax: plt.Axes, x: Tensor, labels: Tensor | None = None, lim: float | None = None, **kw) -> None:
    """Scatter 2-D points ``(n, 2)``, coloured by ``labels`` when given; equal aspect, optional ``[-lim, lim]`` box."""
    x = _np(x)
    c = None if labels is None else _np(labels)
    ax.scatter(
        x[:, 0],
        x[:, 1],
        c=c,
        cmap="coolwarm" if c is not None else None,
        s=kw.pop("s", 4),
        alpha=kw.pop("alpha", 0.6),
        **kw,
    )
    ax.set_aspect("equal")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)


def show_image(ax: plt.Axes, image: Tensor, vmin: float = -1.0, vmax: float = 1.0) -> None:
    """Show one image ``(C, H, W)`` or ``(H, W)`` with values in ``[vmin, vmax]``; C = 1 in grey, C = 3 in colour."""
    img = _np(image)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim == 3:
        ax.imshow(np.clip((img.transpose(1, 2, 0) - vmin) / (vmax - vmin), 0, 1))
    else:
        ax.imshow(img, cmap="gray_r", vmin=vmin, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_convergence(
    ax: plt.Axes, steps: Sequence[int], errors: Mapping[str, Sequence[float]], ylabel: str = "RMS error"
) -> dict[str, float]:
    """Log-log error vs number of steps per method; returns and shows the fitted slope of each."""
    slopes = {}
    for name, err in errors.items():
        slope = float(np.polyfit(np.log(steps), np.log(err), 1)[0])
        slopes[name] = slope
        ax.loglog(steps, err, "o-", label=f"{name} (slope {slope:.2f})")
    ax.set_xlabel("steps")
    ax.set_ylabel(ylabel)
    ax.legend()
    return slopes


def image_rows(rows: Mapping[str, Tensor | np.ndarray], n_show: int, vmin: float = -1.0, vmax: float = 1.0,
               size: float = 1.1) -> plt.Figure:  # fmt: skip
    """A grid with one row of ``n_show`` images ``(n, C, H, W)`` per entry of ``rows``, titled by its key."""
    fig, axes = plt.subplots(len(rows), n_show, figsize=(size * n_show, 1.15 * size * len(rows)),
                             layout="constrained", squeeze=False)  # fmt: skip
    for i, (name, images) in enumerate(rows.items()):
        for j in range(n_show):
            show_image(axes[i, j], images[j], vmin=vmin, vmax=vmax)
        axes[i, 0].set_title(name, fontsize=8, loc="left")
    return fig


def image_grid(images: Tensor | np.ndarray, row_titles: Sequence[str] = (), col_titles: Sequence[str] = (),
               size: float = 1.1, vmin: float = -1.0, vmax: float = 1.0) -> plt.Figure:  # fmt: skip
    """A grid of images ``(R, C, channels, H, W)``, with a title on the left of each row and above each column."""
    images = _np(images)
    R, C = images.shape[:2]
    fig, axes = plt.subplots(R, C, figsize=(size * C + 0.6, size * R + 0.3), layout="constrained", squeeze=False)
    for i in range(R):
        for j in range(C):
            show_image(axes[i, j], images[i, j], vmin=vmin, vmax=vmax)
    for j, title in enumerate(col_titles):
        axes[0, j].set_title(title, fontsize=8)
    for i, title in enumerate(row_titles):
        axes[i, 0].set_ylabel(title, fontsize=8)
    return fig


def plot_phase_transition(result: PhaseTransition, ax: plt.Axes | None = None, title: str | None = None) -> plt.Axes:
    """Heat map of a :class:`~lowdim.experiments.phase.PhaseTransition`'s success probability (rows: r, columns: N),
    with the line N = r."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
    sizes, ranks = result.sample_sizes, result.ranks
    im = ax.imshow(result.success, origin="lower", cmap="gray", vmin=0, vmax=1, aspect="auto",
                   extent=(sizes[0] - 0.5, sizes[-1] + 0.5, ranks[0] - 0.5, ranks[-1] + 0.5))  # fmt: skip
    ax.plot(ranks, ranks, "r--", lw=1, label="$N = r$")
    ax.set_xlabel("N (samples per component)" if result.K > 1 else "N (samples)")
    ax.set_ylabel("r (intrinsic dimension)")
    ax.set_title(title or f"{result.method}, d = {result.d}, K = {result.K}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    plt.colorbar(im, ax=ax, label="success probability")
    return ax


def _two_panels(axes: Sequence[plt.Axes] | None, height: float = 3.6) -> Sequence[plt.Axes]:
    return plt.subplots(1, 2, figsize=(11, height), layout="constrained")[1] if axes is None else axes


def plot_memorization(sweep: MemorizationSweep, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
    """A :class:`~lowdim.experiments.memorization.MemorizationSweep`: memorized fraction and median subspace residual
    against ``N`` (log scale), one line per rank."""
    axes = _two_panels(axes)
    for i, r in enumerate(sweep.ranks):
        axes[0].plot(sweep.sample_sizes, sweep.memorized[i], "o-", ms=4, label=f"r = {r}")
        axes[1].plot(sweep.sample_sizes, sweep.residual[i], "o-", ms=4, label=f"r = {r}")
    xlabel = "N (training points per component)"
    axes[0].set(xscale="log", xlabel=xlabel, ylabel="memorized fraction", ylim=(-0.03, 1.03),
                title="copies of training points")  # fmt: skip
    axes[1].set(xscale="log", yscale="log", xlabel=xlabel, ylabel="median residual",
                title="distance to the true subspaces")  # fmt: skip
    for ax in axes:
        ax.legend(fontsize=8)
    return axes[0].figure


def plot_reproducibility(
    sweep: ReproducibilitySweep, axes: Sequence[plt.Axes] | None = None, replicates: Sequence[ReproducibilitySweep] = ()
) -> plt.Figure:
    """A :class:`~lowdim.experiments.reproducibility.ReproducibilitySweep`: RP and GL against ``N``, one line per
    capacity (the co-emergence figure). With ``replicates`` (the same sweep from other seed pairs), the lines are the
    means over all of them with error bars of one standard deviation
    (:func:`~lowdim.experiments.reproducibility.seed_spread`)."""
    axes = _two_panels(axes)
    sweeps = [sweep, *replicates]
    spread = seed_spread(sweeps) if replicates else None
    for i, (name, p) in enumerate(zip(sweep.capacities, sweep.params)):
        label = f"{name} ({p / 1e3:.0f}k params)"
        for ax, score in zip(axes, ("rp", "gl")):
            if spread is None:
                ax.plot(sweep.sample_sizes, getattr(sweep, score)[i], "o-", ms=4, label=label)
            else:
                ax.errorbar(sweep.sample_sizes, spread[f"{score}_mean"][i], yerr=spread[f"{score}_std"][i], fmt="o-",
                            ms=4, capsize=3, label=label)  # fmt: skip
    suffix = f", mean ± s.d. of {len(sweeps)} seed pairs" if replicates else ""
    for ax, title in zip(axes, ("reproducibility (RP)", "generalization (GL)")):
        ax.set(xscale="log", xlabel="N (training images)", ylabel="score", ylim=(-0.03, 1.03), title=title + suffix)
        ax.legend(fontsize=8)
    return axes[0].figure


def plot_teacher_student(result: TeacherStudent, axes: Sequence[plt.Axes] | None = None) -> plt.Figure:
    r"""A :class:`~lowdim.experiments.students.TeacherStudent` result. Left: both errors against ``N``; right:
    against :math:`N/\sqrt{|\theta|}`, the scaling variable of Zhang et al. (2025)."""
    axes = _two_panels(axes, 3.8)
    sizes = np.array(result.sample_sizes)
    for i, (w, p) in enumerate(zip(result.widths, result.params)):
        for ax, x in ((axes[0], sizes), (axes[1], sizes / np.sqrt(p))):
            ax.plot(x, result.e_gen[i], "o-", color=f"C{i}", ms=4, label=f"$\\mathcal{{E}}_{{gen}}$, width {w}")
            ax.plot(x, result.e_mem[i], "s--", color=f"C{i}", ms=4, label=f"$\\mathcal{{E}}_{{mem}}$, width {w}")
    axes[0].set(xscale="log", xlabel="N (training samples)", ylabel="PFD", title="errors vs N")
    axes[1].set(xscale="log", xlabel=r"$N/\sqrt{|\theta|}$", ylabel="PFD", title="errors vs N / sqrt(parameters)")
    axes[0].legend(fontsize=7)
    return axes[0].figure
