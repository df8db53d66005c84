"""Figures shared by the chapters (matplotlib). Each function draws on an ``ax`` or returns a new figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

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
