"""ipywidgets explorers: the top layer, imported by nothing in :mod:`lowdim`.

Each explorer is a thin wrapper around a ``*_frame`` function that draws one setting; the chapters call the frame
function with the explorer's default values for the static figure next to it, so the two always agree.

Every explorer takes ``static``: with ``static=True`` (the default, what the book shows) it draws the frames of a
modest grid of settings (``grid``, a few dozen PNGs) into nested ``Stack`` widgets whose selection is ``jslink``-ed
to the controls, so the saved widget state moves on the published site with no kernel; with ``static=False`` the
controls span their full ranges and every change recomputes the frame live in the kernel.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from functools import partial

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from . import plotting
from ._random import randn, stream
from .denoisers import EmpiricalDenoiser, GaussianDenoiser
from .editing import edit_directions, step_along
from .experiments.loco import factor_vector, fitted_index, local_edit_test, matched, object_masks, outside_quality
from .experiments.phase import fit_subspaces, sweep_data
from .experiments.reproducibility import ReproducibilitySweep
from .experiments.shallow_diffuse import ATTACKS, apply_attack, below, clean_branch, marked_twin, shared_grid
from .experiments.students import TeacherStudent
from .factors import fit_scene_factors
from .jacobian import jacobian_svd
from .molrg import MoLRG, fit_molrg_denoiser
from .samplers import invert, sample, sample_prior
from .schedules import VP, Schedule
from .sde import perturb
from .similarity import THRESHOLD, Embedding, max_similarity
from .subspaces import match_subspaces, principal_cosines, subspace_recovery_error
from .watermark import watermark_key, watermark_score

Tensor = torch.Tensor


FRAME_DPI = 72  # precomputed frames: small PNGs, a few dozen per explorer
MAX_FRAMES = 80  # a larger static grid is refused: the page would carry megabytes of frames


def _live_explorer(draw: Callable[..., plt.Figure], controls: dict[str, widgets.Widget]) -> widgets.Widget:
    """Redraw ``draw(**values)`` into an Image whenever a control changes (needs a running kernel); an exception
    shows in the Output below it when run in IPython."""
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
    errors = widgets.Output()

    def update(_=None) -> None:
        with errors:
            errors.clear_output()
            image.value = _png(draw(**{name: c.value for name, c in controls.items()}))

    for c in controls.values():
        c.observe(update, names="value")
    update()
    box = widgets.VBox([widgets.HBox(list(controls.values())), image, errors])
    box.add_class("lowdim-explorer")
    return box


def _near(value, options: Sequence):
    """``value`` if it is one of ``options``, else the option closest to it."""
    return min(options, key=lambda o: abs(o - value))


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _grid_control(live: widgets.Widget, options: Sequence) -> widgets.Widget:
    """The twin of ``live`` restricted to ``options``: a picker keeps its kind, a slider becomes a SelectionSlider;
    every kind keeps its position in the synced ``index`` trait, which the browser links to the frames."""
    value = live.value if live.value in options else options[0]
    pairs = [(_label(v), v) for v in options]
    if isinstance(live, widgets.Dropdown | widgets.ToggleButtons):
        return type(live)(options=pairs, value=value, description=live.description)
    return widgets.SelectionSlider(options=pairs, value=value, description=live.description, continuous_update=False)


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FRAME_DPI)
    plt.close(fig)
    return buffer.getvalue()


def _frames(draw: Callable[..., plt.Figure], grid: dict[str, Sequence], fixed: dict, chosen: dict) -> widgets.Widget:
    """Nested Stacks over the controls of ``grid`` in order, Image leaves: the frame of every setting."""
    name = next((n for n in grid if n not in chosen), None)
    if name is None:
        return widgets.Image(value=_png(draw(**chosen, **fixed)), format="png", layout=widgets.Layout(max_width="100%"))
    return widgets.Stack([_frames(draw, grid, fixed, {**chosen, name: v}) for v in grid[name]])


def _link_stacks(node: widgets.Widget, controls: list[widgets.Widget]) -> None:
    """Select each Stack's child by its control's index, in the browser (jslink, kept in the saved widget state)
    and in the kernel (so a control set from Python shows its frame too)."""
    if not isinstance(node, widgets.Stack):
        return
    control = controls[0]
    node.selected_index = control.index
    widgets.jslink((control, "index"), (node, "selected_index"))
    control.observe(lambda change, node=node: setattr(node, "selected_index", change["new"]), names="index")
    for child in node.children:
        _link_stacks(child, controls[1:])


def _explorer(
    draw: Callable[..., plt.Figure],
    controls: dict[str, widgets.Widget],
    grid: dict[str, Sequence],
    static: bool,
) -> widgets.Widget:
    """An explorer of ``draw(**values)`` over ``controls``.

    ``static=False``: the controls cover their full ranges and each change redraws in the kernel. ``static=True``: the
    frames of every setting in ``grid`` (a sub-range per control; controls missing from ``grid`` stay at their
    value) are drawn now, as PNGs in nested ``Stack`` widgets whose selection is linked to the controls in the
    browser: the explorer then moves on a static page with no kernel behind it.
    """
    if not static:
        return _live_explorer(draw, controls)
    unknown = set(grid) - set(controls)
    if unknown:
        raise ValueError(f"grid: unknown control(s) {sorted(unknown)}; the controls are {list(controls)}")
    grid = {name: list(values) for name, values in grid.items()}
    if any(not values for values in grid.values()):
        raise ValueError("grid: every control needs at least one value")
    n_frames = int(np.prod([len(v) for v in grid.values()]))
    if n_frames > MAX_FRAMES:
        raise ValueError(f"grid: {n_frames} frames, more than {MAX_FRAMES}; use fewer values or static=False")
    # a control with one value in the grid is held there, like one missing from it, and not shown
    fixed = {name: c.value for name, c in controls.items() if name not in grid}
    fixed |= {name: values[0] for name, values in grid.items() if len(values) == 1}
    grid = {name: values for name, values in grid.items() if len(values) > 1}
    picked = {name: _grid_control(controls[name], values) for name, values in grid.items()}
    stack = _frames(draw, grid, fixed, {})
    _link_stacks(stack, list(picked.values()))
    held = ", ".join(f"{controls[n].description} = {_label(v)}" for n, v in fixed.items())
    note = widgets.HTML(
        f"<small>Precomputed: {n_frames} settings{f' ({held} held)' if held else ''}, so the controls also move on "
        "the static site. In a running notebook, <code>static=False</code> recomputes any setting live.</small>"
    )
    box = widgets.VBox([widgets.HBox(list(picked.values())), stack, note])
    box.add_class("lowdim-explorer")
    return box


def noising_frame(
    points: Tensor, labels: Tensor, image: Tensor, schedule: Schedule, t: float = 0.3, seed: int = 0
) -> plt.Figure:
    r"""A 2-D point cloud ``(n, 2)`` and an image ``(C, H, W)`` at time ``t``: :math:`\alpha_t x_0 + \beta_t\varepsilon`
    with one fixed draw of :math:`\varepsilon` per ``seed``."""
    g = stream(seed)
    eps_points = randn(points.shape, g, points.dtype, points.device)
    eps_image = randn(image.shape, g, image.dtype, image.device)
    tt = torch.tensor(t, dtype=points.dtype, device=points.device)
    a, b = schedule.alpha(tt), schedule.beta(tt)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(7, 3.3), layout="constrained")
    plotting.plot_points(ax0, a * points + b * eps_points, labels, lim=3.5)
    ax0.set_title(rf"2-D mixture, $\alpha_t={a:.2f}$, $\beta_t={b:.2f}$")
    plotting.show_image(ax1, a * image + b * eps_image, vmin=-2, vmax=2)
    ax1.set_title(f"digit at t = {t:.2f}")
    return fig


def forward_noising_explorer(
    points: Tensor,
    labels: Tensor,
    image: Tensor,
    schedule: Schedule,
    seed: int = 0,
    static: bool = True,
    grid: dict[str, Sequence] | None = None,
) -> widgets.Widget:
    """Slider over ``t`` for :func:`noising_frame` (default ``t = 0.3``); the noise stays fixed along the slider.
    ``static``/``grid``: precomputed frames over ``grid`` (default 12 times) or a live slider, as in every explorer
    here (see the module docstring)."""
    slider = widgets.FloatSlider(value=0.3, min=0.0, max=1.0, step=0.05, description="t", continuous_update=False)
    grid = grid or {"t": [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]}
    return _explorer(partial(noising_frame, points, labels, image, schedule, seed=seed), {"t": slider}, grid, static)


def sampler_frame(
    model: MoLRG, schedule: Schedule, method: str = "heun", steps: int = 10, n: int = 500, seed: int = 0
) -> plt.Figure:
    """Samples of a 2-D MoLRG by ``method`` with ``steps`` steps, coloured by component, with the median
    distance to the nearest line in the title."""
    like = model.bases[0]  # the prior follows the model's dtype and device
    x_T = sample_prior(schedule, (n, model.dim), generator=stream(seed), dtype=like.dtype, device=like.device)
    x = sample(model.denoiser(schedule), x_T, schedule, steps=steps, method=method, generator=stream(seed + 1))
    fig, ax = plt.subplots(figsize=(3.6, 3.6), layout="constrained")
    labels = model.posterior_weights(x, 1e-3, schedule).argmax(1)
    plotting.plot_points(ax, x, labels, lim=3.5)
    off = torch.stack([(x - x @ U @ U.T).norm(dim=1) for U in model.bases]).min(0).values
    ax.set_title(f"{method}, {steps} steps: median off-line distance {off.median():.1e}", fontsize=9)
    return fig


def sampler_explorer(
    model: MoLRG, schedule: Schedule, n: int = 500, seed: int = 0, static: bool = True,
    grid: dict[str, Sequence] | None = None,
) -> widgets.Widget:  # fmt: skip
    """Pick a sampler and a number of steps for :func:`sampler_frame` (default Heun, 10 steps); precomputed over
    the four methods and 2–50 steps unless ``static=False``."""
    method = widgets.Dropdown(options=["euler", "ddim", "heun", "sde"], value="heun", description="method")
    steps = widgets.IntSlider(value=10, min=2, max=100, description="steps", continuous_update=False)
    draw = partial(sampler_frame, model, schedule, n=n, seed=seed)
    grid = grid or {"method": ["euler", "ddim", "heun", "sde"], "steps": [2, 5, 10, 20, 50]}
    return _explorer(draw, {"method": method, "steps": steps}, grid, static)


def denoiser_frame(
    fields: dict[str, Callable[[Tensor, Tensor], Tensor]],
    model: MoLRG,
    t: float = 0.2,
    lim: float = 3.0,
    grid: int = 13,
) -> plt.Figure:
    r"""The displacement :math:`D(x, t) - x` (drawn at half length) of each denoiser in ``fields`` on a 2-D grid,
    with the lines of ``model``."""
    like = model.bases[0]  # the grid follows the model's dtype and device
    axis = torch.linspace(-lim, lim, grid, dtype=like.dtype, device=like.device)
    xx = torch.cartesian_prod(axis, axis)
    fig, axes = plt.subplots(1, len(fields), figsize=(3.4 * len(fields), 3.4), layout="constrained", squeeze=False)
    with torch.no_grad():
        for ax, (name, D) in zip(axes[0], fields.items()):
            v = (D(xx, torch.full((len(xx),), t, dtype=xx.dtype, device=xx.device)) - xx).cpu()
            # Arrows at half length so that neighbours do not overlap.
            ax.quiver(*xx.cpu().T, *v.T, angles="xy", scale_units="xy", scale=2, width=4e-3)
            for U in model.bases:
                U = U.cpu()
                line = torch.tensor([-lim, lim], dtype=U.dtype)[:, None] * U[:, 0] / U[:, 0].abs().max()
                ax.plot(line[:, 0], line[:, 1], "r-", lw=1)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_title(f"{name}, t = {t:.2f}", fontsize=9)
    return fig


def denoiser_explorer(
    fields: dict[str, Callable[[Tensor, Tensor], Tensor]], model: MoLRG, lim: float = 3.0, grid: int = 13,
    static: bool = True, times: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
) -> widgets.Widget:  # fmt: skip
    """Slider over ``t`` for :func:`denoiser_frame` (default ``t = 0.2``; ``grid`` is the frame's arrow grid, so the
    precomputed times are ``times``)."""
    slider = widgets.FloatSlider(value=0.2, min=0.02, max=1.0, step=0.02, description="t", continuous_update=False)
    draw = partial(denoiser_frame, fields, model, lim=lim, grid=grid)
    return _explorer(draw, {"t": slider}, {"t": list(times)}, static)


def subspace_cell_frame(K: int = 1, r: int = 4, n: int = 4, d: int = 48, seed: int = 0, steps: int = 600) -> plt.Figure:
    r"""One cell of a phase transition: ``K`` orthogonal random rank-``r`` subspaces of :math:`\mathbb R^d` with ``n``
    points each; cosines of the principal angles between each true subspace and its matched estimate, found by
    the classical method (PCA for ``K = 1``, K-subspaces otherwise) and by the trained
    :class:`~lowdim.dae.LowRankDAE` (all ones = exact recovery). Uses the sweep's own data and fitting code."""
    g = stream(seed)
    X, truth = sweep_data(d, K, r, [n], 1, g)
    col_mask = torch.ones(1, K, r, dtype=torch.bool)
    classical = "PCA" if K == 1 else "K-subspaces"
    found = {
        classical: fit_subspaces("pca" if K == 1 else "ksubspaces", X, col_mask, g),
        "trained DAE": fit_subspaces("dae", X, col_mask, g, steps=steps),
    }
    fig, ax = plt.subplots(figsize=(5.2 + 0.6 * (K - 1) * r / 2, 3.0), layout="constrained")
    width = 0.38
    for i, (name, est) in enumerate(found.items()):
        cos = torch.cat([principal_cosines(est[0, a], truth[0, b]) for a, b in match_subspaces(est[0], truth[0])])
        err = subspace_recovery_error(list(est[0]), list(truth[0]))
        ax.bar((torch.arange(1, K * r + 1) + (i - 0.5) * width).numpy(), cos.cpu().numpy(), width,
               label=f"{name} (error {err:.2f})")  # fmt: skip
    for k in range(1, K):
        ax.axvline(k * r + 0.5, color="k", lw=0.5)
    ax.set(
        xlabel="principal angle index" + (" (component by component)" if K > 1 else ""),
        ylabel="cosine",
        ylim=(0, 1.05),
        xticks=range(1, K * r + 1),
    )
    per = " per component" if K > 1 else ""
    ax.set_title(f"K = {K}, r = {r}, N = {n}{per}, d = {d}: {'N >= r' if n >= r else 'N < r'}", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def pca_cell_frame(r: int = 4, n: int = 4, d: int = 48, seed: int = 0, steps: int = 600) -> plt.Figure:
    """:func:`subspace_cell_frame` with ``K = 1``: PCA against the trained DAE (chapter 6)."""
    return subspace_cell_frame(1, r, n, d, seed, steps)


def subspace_cell_explorer(
    K: int = 1, d: int = 48, static: bool = True, grid: dict[str, Sequence] | None = None
) -> widgets.Widget:
    """Sliders for ``r``, ``N`` and the trial seed of :func:`subspace_cell_frame` (defaults r = 4, N = 4, seed 0);
    precomputed over r ∈ {2, 4} and N ∈ {1, 2, 4, 8} at trial 0 (each frame trains a DAE) unless ``static=False``."""
    controls = {
        "r": widgets.IntSlider(value=4, min=1, max=8, description="r", continuous_update=False),
        "n": widgets.IntSlider(value=4, min=1, max=15, description="N", continuous_update=False),
        "seed": widgets.IntSlider(value=0, min=0, max=19, description="trial", continuous_update=False),
    }
    grid = grid or {"r": [2, 4], "n": [1, 2, 4, 8]}
    return _explorer(partial(subspace_cell_frame, K, d=d), controls, grid, static)


def pca_cell_explorer(d: int = 48, static: bool = True, grid: dict[str, Sequence] | None = None) -> widgets.Widget:
    """:func:`subspace_cell_explorer` with ``K = 1`` (chapter 6)."""
    return subspace_cell_explorer(1, d, static, grid)


def digit_denoising_frame(
    train: Tensor, test: Tensor, K: int = 10, r: int = 8, t: float = 0.3, seed: int = 0, n_show: int = 6,
    cache: dict | None = None,
) -> plt.Figure:  # fmt: skip
    r"""Held-out digits ``test`` ``(M, 1, 8, 8)`` denoised at time ``t`` (VP) by the optimal denoisers of three models
    fitted to ``train``: one Gaussian, a MoLRG of ``K`` affine rank-``r`` components found by K-subspaces
    (:func:`~lowdim.molrg.fit_molrg_denoiser` with ``center=True``), and the empirical law (memorization). Row titles give
    each denoiser's MSE per image on all of ``test``, with the same noise for all three. ``cache`` (a dict) keeps
    the fitted models between calls, so moving ``t`` refits nothing."""
    schedule = VP()
    cache = {} if cache is None else cache
    if "gaussian" not in cache:
        cache["gaussian"] = GaussianDenoiser.fit(train)
    if (K, r, seed) not in cache:
        cache[K, r, seed] = fit_molrg_denoiser(train, r, K=K, center=True, generator=stream(seed))
    models = {"one Gaussian": cache["gaussian"], f"MoLRG K={K}, r={r}": cache[K, r, seed],
              "empirical": EmpiricalDenoiser(train)}  # fmt: skip
    noisy = perturb(test, t, schedule, generator=stream(seed))[0]
    rows = {"clean": test, f"noisy, t = {t:.2f}": noisy}
    for name, model in models.items():
        out = model.posterior_mean(noisy, t, schedule)
        mse = (out - test).reshape(len(test), -1).pow(2).sum(1).mean()
        rows[f"{name}: MSE {mse:.1f}"] = out
    fig, axes = plt.subplots(len(rows), n_show, figsize=(1.1 * n_show + 2.2, 1.2 * len(rows)), layout="constrained")
    for i, (name, images) in enumerate(rows.items()):
        for j in range(n_show):
            plotting.show_image(axes[i, j], images[j], vmin=-1.5, vmax=1.5)
        axes[i, 0].set_title(name, fontsize=8, loc="left")
    return fig


def digit_denoising_explorer(
    train: Tensor, test: Tensor, static: bool = True, grid: dict[str, Sequence] | None = None
) -> widgets.Widget:
    """Sliders for ``K``, ``r`` and ``t`` of :func:`digit_denoising_frame` (defaults K = 10, r = 8, t = 0.3);
    precomputed over K ∈ {1, 10}, r ∈ {2, 8}, t ∈ {0.1, 0.3, 0.6} unless ``static=False``."""
    controls = {
        "K": widgets.IntSlider(value=10, min=1, max=20, description="K", continuous_update=False),
        "r": widgets.IntSlider(value=8, min=1, max=32, description="r", continuous_update=False),
        "t": widgets.FloatSlider(value=0.3, min=0.02, max=0.9, step=0.02, description="t", continuous_update=False),
    }
    grid = grid or {"K": [1, 10], "r": [2, 8], "t": [0.1, 0.3, 0.6]}
    return _explorer(partial(digit_denoising_frame, train, test, cache={}), controls, grid, static)


def nearest_training_frame(
    sweep: ReproducibilitySweep, pool: Tensor, capacity: str | None = None, N: int = 64,
    embed: Embedding | None = None, n_show: int = 8,
) -> plt.Figure:  # fmt: skip
    """Generated digits of the ``capacity`` network trained on ``pool[:N]`` (cached in ``sweep``) above their most
    similar training images, each titled with the similarity; a similarity above 0.6 counts as a copy."""
    capacity = capacity or sweep.capacities[-1]
    i, j = sweep.capacities.index(capacity), sweep.sample_sizes.index(N)
    samples = torch.as_tensor(sweep.samples[i, j, :n_show], dtype=pool.dtype)
    n_show = len(samples)  # a sweep may keep fewer samples than asked for
    best, idx = max_similarity(samples, pool[:N], embed)
    fig = plotting.image_rows({f"generated ({capacity}, N = {N}; GL = {sweep.gl[i, j]:.2f})": samples,
                               "most similar training image": pool[:N][idx]}, n_show)  # fmt: skip
    for ax, s in zip(fig.axes[n_show:], best):
        ax.set_xlabel(f"{s:.2f}", fontsize=8, color="C3" if s > THRESHOLD else "k")
    return fig


def nearest_training_explorer(
    sweep: ReproducibilitySweep, pool: Tensor, embed: Embedding | None = None, static: bool = True,
    grid: dict[str, Sequence] | None = None,
) -> widgets.Widget:  # fmt: skip
    """Choose the capacity and N of :func:`nearest_training_frame` (defaults: the largest capacity, N = 64);
    precomputed over every cached setting unless ``static=False``."""
    controls = {
        "capacity": widgets.Dropdown(options=sweep.capacities, value=sweep.capacities[-1], description="network"),
        "N": widgets.SelectionSlider(
            options=sweep.sample_sizes, value=_near(64, sweep.sample_sizes), description="N", continuous_update=False
        ),
    }
    grid = grid or {"capacity": sweep.capacities, "N": sweep.sample_sizes}
    return _explorer(partial(nearest_training_frame, sweep, pool, embed=embed), controls, grid, static)


def teacher_student_frame(result: TeacherStudent, teacher: MoLRG, width: int | None = None, N: int = 64,
                          steps: int = 40) -> plt.Figure:  # fmt: skip
    """Per evaluation noise, the distance of the student's sample to the teacher's (x) and to the empirical
    denoiser's (y), both from that same noise: points below the diagonal are closer to a training point's map
    than to the teacher's (memorized)."""
    width = width or result.widths[-1]
    i, j = result.widths.index(width), result.sample_sizes.index(N)
    student = torch.as_tensor(result.samples[i, j])
    schedule = VP()
    x_T = sample_prior(schedule, (student.shape[0], teacher.dim), generator=stream(result.eval_seed),
                       dtype=student.dtype)  # fmt: skip
    train = torch.as_tensor(result.pool[:N])
    to_teacher = (student - sample(teacher.denoiser(schedule), x_T, schedule, steps=steps)).norm(dim=1)
    to_empirical = (student - sample(EmpiricalDenoiser(train).denoiser(schedule), x_T, schedule, steps=steps)).norm(
        dim=1
    )
    fig, ax = plt.subplots(figsize=(4.6, 4.2), layout="constrained")
    ax.scatter(to_teacher, to_empirical, s=8, alpha=0.6)
    top = float(max(to_teacher.max(), to_empirical.max())) * 1.05
    ax.plot([0, top], [0, top], "k--", lw=1)
    below = float((to_empirical < to_teacher).double().mean())
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="distance to the teacher's sample", ylabel="distance to the empirical sample",
           title=f"width {width}, N = {N}: {100 * below:.0f} % closer to a training point")  # fmt: skip
    return fig


def teacher_student_explorer(
    result: TeacherStudent, teacher: MoLRG, static: bool = True, grid: dict[str, Sequence] | None = None
) -> widgets.Widget:
    """Choose the student width and N of :func:`teacher_student_frame` (defaults: the largest width, N = 64);
    precomputed over every cached setting unless ``static=False``."""
    controls = {
        "width": widgets.Dropdown(options=result.widths, value=result.widths[-1], description="width"),
        "N": widgets.SelectionSlider(
            options=result.sample_sizes, value=_near(64, result.sample_sizes), description="N", continuous_update=False
        ),
    }
    grid = grid or {"width": result.widths, "N": result.sample_sizes}
    return _explorer(partial(teacher_student_frame, result, teacher), controls, grid, static)


def singular_vectors_frame(
    D: Callable[[Tensor, Tensor], Tensor], x0: Tensor, t: float = 0.5, k: int = 6, step: float = 12.0,
    seed: int = 0, schedule: Schedule | None = None,
) -> plt.Figure:  # fmt: skip
    r"""The top-``k`` right singular vectors :math:`v_i` of the Jacobian of ``D(·, t)`` at :math:`x_t = \alpha_t x_0 +
    \beta_t\varepsilon` (one image ``x0`` ``(C, H, W)``, noise from ``seed``), each shown scaled to its largest
    entry, and below each the edited estimate :math:`D(x_t + \lambda v_i)` with :math:`\lambda` = ``step``."""
    schedule = schedule or VP()
    x_t, _ = perturb(x0[None], t, schedule, generator=stream(seed))
    svd = jacobian_svd(D, x_t, t, k, tol=1e-3, max_iters=100, generator=stream(seed))
    V = svd.V[0].T.reshape(k, *x0.shape)
    with torch.no_grad():
        clean = D(x_t, t)[0]
        edited = D(x_t + step * V, torch.full((k,), t, dtype=x_t.dtype, device=x_t.device))
    fig, axes = plt.subplots(2, k + 1, figsize=(1.3 * (k + 1), 2.9), layout="constrained", squeeze=False)
    plotting.show_image(axes[0, 0], x_t[0].clamp(-1, 1))
    axes[0, 0].set_title(f"$x_t$, t = {t:.2f}", fontsize=8)
    plotting.show_image(axes[1, 0], clean)
    axes[1, 0].set_title("$D(x_t)$", fontsize=8)
    for i in range(k):
        v = V[i] / V[i].abs().max()
        plotting.show_image(axes[0, i + 1], v)
        axes[0, i + 1].set_title(f"$v_{{{i + 1}}}$, $s_{{{i + 1}}}$ = {float(svd.S[0, i]):.2f}", fontsize=8)
        plotting.show_image(axes[1, i + 1], edited[i])
        axes[1, i + 1].set_title(f"$D(x_t + {step:g} v_{{{i + 1}}})$", fontsize=7)
    return fig


def singular_vectors_explorer(
    D: Callable[[Tensor, Tensor], Tensor], x0: Tensor, step: float = 12.0, static: bool = True,
    grid: dict[str, Sequence] | None = None,
) -> widgets.Widget:  # fmt: skip
    """Choose ``t`` and ``k`` of :func:`singular_vectors_frame` (defaults 0.5 and 6); each frame runs a matrix-free
    top-``k`` SVD (a few seconds at d = 3072), so the precomputed grid holds ``k = 6`` and moves ``t``."""
    controls = {
        "t": widgets.SelectionSlider(
            options=[0.1, 0.3, 0.5, 0.7, 0.9], value=0.5, description="t", continuous_update=False
        ),  # fmt: skip
        "k": widgets.IntSlider(value=6, min=1, max=8, description="k", continuous_update=False),
    }
    grid = grid or {"t": [0.1, 0.3, 0.5, 0.7, 0.9]}
    return _explorer(partial(singular_vectors_frame, D, x0, step=step), controls, grid, static)


def _edit_state(model, x0: Tensor, latents: dict[str, Tensor], image: int, obj: int, t: float, null_rank: int,
                steps: int) -> dict:  # fmt: skip
    """Inversion, reconstruction, edit directions and fitted factors of one scene: what every edit of it reuses."""
    x = x0[image : image + 1].to(next(model.parameters()).dtype)
    lat = {k: v[image : image + 1] for k, v in latents.items()}
    target = torch.tensor([obj])
    mask = object_masks(lat, target, size=x.shape[-1]).to(x.dtype)
    x_t = invert(model, x, model.schedule, t, steps)
    recon = sample(model, x_t, model.schedule, steps=steps, method="ddim", t_start=t)
    dirs = edit_directions(model, x_t, t, mask, rank=5, null_rank=null_rank, tol=1e-3, generator=stream(0))
    fit = fit_scene_factors(recon.clamp(-1, 1), steps=200)
    which = int(fitted_index(fit, lat, target)[0])
    return {"mask": mask, "x_t": x_t, "recon": recon, "dirs": dirs, "fit": fit, "which": which}


def loco_edit_frame(
    model, x0: Tensor, latents: dict[str, Tensor], image: int = 0, obj: int = 0, direction: int = 1,
    lam: float = 2.0, t: float = 0.5, null_rank: int = 20, steps: int = 50, cache: dict | None = None,
) -> plt.Figure:  # fmt: skip
    r"""One LOCO edit (:mod:`lowdim.editing`) of scene ``image`` of ``x0`` ``(n, 3, S, S)`` with its ``latents``
    (:func:`~lowdim.data.scenes`): object ``obj`` masked (:func:`~lowdim.experiments.loco.object_masks`), the
    ``direction``-th (from 1) right singular vector of :math:`J_\Omega` at the inverted :math:`x_t`, projected off the
    complement's top ``null_rank``, step ``lam``, denoised back from ``t``. Panels: the scene with the mask, the
    λ = 0 reconstruction, the direction (scaled to its largest entry), the edit and :math:`|\text{edit} -
    \text{reconstruction}|`; the title gives the fitted factor change and the local-edit test's verdict. ``cache``
    (a dict) keeps each scene's inversion and directions between calls."""
    key = (image, obj, t, null_rank, steps)
    state = None if cache is None else cache.get(key)
    if state is None:
        state = _edit_state(model, x0, latents, image, obj, t, null_rank, steps)
        if cache is not None:
            cache[key] = state
    v = state["dirs"].directions[:, :, direction - 1 : direction]
    edited = sample(model, step_along(state["x_t"], v, lam), model.schedule, steps=steps, method="ddim", t_start=t)
    fit = matched(state["fit"], fit_scene_factors(edited.clamp(-1, 1), steps=200))
    change = (factor_vector(fit) - factor_vector(state["fit"]))[0].numpy()
    flips = (fit.kind != state["fit"].kind)[0].numpy()
    mine, other = change[state["which"]], change[1 - state["which"]]
    rms, _, _ = outside_quality(edited, state["recon"], state["mask"])
    test = local_edit_test(mine, other, flips[[state["which"], 1 - state["which"]]], rms[0])
    verdict = "local edit" if test["success"] else "not a local edit"
    delta = (edited - state["recon"])[0].abs().amax(0)
    fig, axes = plt.subplots(1, 5, figsize=(9.5, 2.5), layout="constrained")
    plotting.show_image(axes[0], x0[image])
    axes[0].contour(state["mask"][0, 0].numpy(), levels=[0.5], colors="w", linewidths=0.8)
    axes[0].set_title(f"scene {image}, mask on object {obj}", fontsize=8)
    plotting.show_image(axes[1], state["recon"][0])
    axes[1].set_title(f"reconstruction (λ = 0), t = {t:g}", fontsize=8)
    shown = v[0, :, 0].reshape(x0.shape[1:])
    plotting.show_image(axes[2], shown / shown.abs().max())
    sigma = float(state["dirs"].singular_values[0, direction - 1])
    axes[2].set_title(f"$v_{{{direction}}}$ projected, $s_{{{direction}}}$ = {sigma:.2f}", fontsize=8)
    plotting.show_image(axes[3], edited[0])
    axes[3].set_title(f"edit, λ = {lam:+.2g}", fontsize=8)
    axes[4].imshow(delta.numpy(), cmap="magma", vmin=0, vmax=1)
    axes[4].contour(state["mask"][0, 0].numpy(), levels=[0.5], colors="c", linewidths=0.8)
    axes[4].set_title("|edit − reconstruction|", fontsize=8)
    axes[4].set_xticks([])
    axes[4].set_yticks([])
    fig.suptitle(
        f"{verdict}: colour {np.array2string(mine[:3], precision=2, sign='+')}, shift "
        f"{np.linalg.norm(mine[3:5]):.2f} px, radius {mine[5]:+.2f} px; other object moved "
        f"{np.linalg.norm(other[3:5]):.2f} px; outside RMS {rms[0]:.3f}", fontsize=8)  # fmt: skip
    return fig


def loco_edit_explorer(model, x0: Tensor, latents: dict[str, Tensor], t: float = 0.5, null_rank: int = 20,
                       lam: float = 2.0, static: bool = True,
                       grid: dict[str, Sequence] | None = None) -> widgets.Widget:  # fmt: skip
    """Choose the scene, the object to mask, the singular vector and λ (from −2 ``lam`` to 2 ``lam``) of
    :func:`loco_edit_frame`. A new scene or object costs an inversion and two masked SVDs (a few seconds); a new
    direction or λ one denoising pass."""
    cache: dict = {}
    controls = {
        "image": widgets.IntSlider(value=0, min=0, max=x0.shape[0] - 1, description="scene", continuous_update=False),
        "obj": widgets.ToggleButtons(options=[0, 1], value=0, description="object"),
        "direction": widgets.IntSlider(value=1, min=1, max=5, description="v_i", continuous_update=False),
        "lam": widgets.SelectionSlider(
            options=[round(k * lam / 2, 6) for k in range(-4, 5)], value=lam, description="λ", continuous_update=False
        ),  # fmt: skip
    }
    grid = grid or {
        "image": [0],  # each scene and object costs an inversion and two masked SVDs
        "obj": [0, 1],
        "direction": [1, 2],
        "lam": [round(k * lam / 2, 6) for k in (-4, -2, 0, 2, 4)],
    }
    draw = partial(loco_edit_frame, model, x0, latents, t=t, null_rank=null_rank, cache=cache)
    return _explorer(draw, controls, grid, static)


T_STARS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def _clean_branch(model, noise: Tensor, steps: int, cache: dict | None) -> dict:
    """The clean generations of ``noise`` along :func:`~lowdim.experiments.shallow_diffuse.shared_grid` and their
    states at every time of :data:`T_STARS`, kept in ``cache``."""
    if cache is not None and "clean" in cache:
        return cache
    grid = shared_grid(model.schedule, steps, T_STARS)
    clean, states = clean_branch(model, noise, grid, T_STARS)
    state = {"clean": clean, "states": states, "grid": grid}
    if cache is not None:
        cache.update(state)
    return state


def watermark_frame(
    model, noise: Tensor, t_star: float = 0.3, band: str = "high", attack: str = "clean", radius: float = 4.0,
    steps: int = 25, key_seed: int = 0, cache: dict | None = None,
) -> plt.Figure:  # fmt: skip
    r"""Shallow Diffuse in the server scenario (:mod:`lowdim.experiments.shallow_diffuse`) on the noises ``noise``
    ``(n, 3, S, S)`` (cast to the dtype of ``model``'s weights): a ring key of ``band`` and ``radius`` (seed
    ``key_seed``, channel 0) injected at ``t_star`` (:math:`t^\ast = 1`: Tree-Ring), detection after ``attack``. Panels for the first noise: the clean twin, the
    marked image, their difference ×10 and the attacked marked image; then the detection scores of all ``n`` marked
    images against their clean twins under the attack, with the PSNR in the title. ``cache`` (a dict) keeps the
    clean generations and each key's marked generations between calls."""
    noise = noise.to(next(model.parameters()).dtype)  # a network's noises follow its weights
    state = _clean_branch(model, noise, steps, cache)
    clean, grid = state["clean"], state["grid"]
    sub = below(grid, t_star)
    key = watermark_key(noise.shape[-1], radius, band, 0, generator=torch.Generator().manual_seed(key_seed),
                        dtype=noise.dtype)  # fmt: skip
    twin = (t_star, band, radius, key_seed)
    marked = cache.get(twin) if cache is not None else None
    if marked is None:
        marked, _ = marked_twin(model, state["states"][t_star], key, clean, sub)
        if cache is not None:
            cache[twin] = marked
    scores = [watermark_score(invert(model, apply_attack(attack, x, 0), model.schedule, t_star, t_grid=sub), key)
              for x in (marked, clean)]  # fmt: skip
    psnr = 10 * torch.log10(4 / (marked - clean).pow(2).mean((1, 2, 3)).clamp_min(1e-12))
    fig, axes = plt.subplots(1, 5, figsize=(10, 2.4), layout="constrained", width_ratios=[1, 1, 1, 1, 1.6])
    panels = {"clean twin": clean[0], "marked": marked[0], "difference ×10": (10 * (marked[0] - clean[0])).clamp(-1, 1),
              f"marked, {attack}": apply_attack(attack, marked[:1], 0)[0]}  # fmt: skip
    for ax, (title, image) in zip(axes, panels.items()):
        plotting.show_image(ax, image)
        ax.set_title(title, fontsize=8)
    for y, values in enumerate(scores):
        axes[4].plot(values.numpy(), np.full(len(values), y) + np.linspace(-0.15, 0.15, len(values)), "o", ms=4,
                     color=("C3", "C0")[y])  # fmt: skip
    axes[4].set_yticks([0, 1], ["marked", "clean"])
    axes[4].set_ylim(-0.5, 1.5)
    axes[4].set_xlabel("detection score", fontsize=8)
    name = "Tree-Ring" if t_star == 1 else "Shallow Diffuse"
    fig.suptitle(f"{name}: {band}-band key at t* = {t_star:g}; median PSNR {float(psnr.median()):.1f} dB", fontsize=9)
    return fig


def watermark_explorer(
    model, noise: Tensor, steps: int = 25, static: bool = True, grid: dict[str, Sequence] | None = None
) -> widgets.Widget:
    r"""Choose the injection time :math:`t^\ast`, the key's band and the attack of :func:`watermark_frame`. The clean
    generations are sampled once; each change costs one marked generation and two inversions."""
    cache: dict = {}
    controls = {
        "t_star": widgets.SelectionSlider(options=list(T_STARS), value=0.3, description="t*", continuous_update=False),
        "band": widgets.ToggleButtons(options=["low", "high"], value="high", description="band"),
        "attack": widgets.Dropdown(options=list(ATTACKS), value="clean", description="attack"),
    }
    grid = grid or {
        "t_star": [0.1, 0.3, 0.5, 1.0],
        "band": ["low", "high"],
        "attack": ["clean", "jpeg25", "brightness"],
    }
    return _explorer(partial(watermark_frame, model, noise, steps=steps, cache=cache), controls, grid, static)


__all__ = [
    "digit_denoising_explorer",
    "digit_denoising_frame",
    "denoiser_explorer",
    "denoiser_frame",
    "forward_noising_explorer",
    "loco_edit_explorer",
    "loco_edit_frame",
    "nearest_training_explorer",
    "nearest_training_frame",
    "noising_frame",
    "pca_cell_explorer",
    "pca_cell_frame",
    "sampler_explorer",
    "sampler_frame",
    "singular_vectors_explorer",
    "singular_vectors_frame",
    "subspace_cell_explorer",
    "subspace_cell_frame",
    "teacher_student_explorer",
    "teacher_student_frame",
    "watermark_explorer",
    "watermark_frame",
]
