r"""Chapter 11's evaluation of Shallow Diffuse watermarks (:mod:`lowdim.watermark`) on the scenes U-Net, in the server
scenario: invisibility and robustness of a Fourier ring key injected at :math:`t^\ast`, against :math:`t^\ast`, the
key's band and an explicit null-space projection, with Tree-Ring as the :math:`t^\ast = 1` case.

For each noise :math:`x_1` the clean branch is sampled (DDIM) down to 0 along one grid that contains every
:math:`t^\ast`; each *cell* (an injection time, a key and whether the change is projected off the top right singular
vectors of the Jacobian at :math:`x_{t^\ast}`) marks the branch's state at :math:`t^\ast` and samples it down along the
same grid. Below :math:`t^\ast = 1` the marked image keeps the clean twin's other channels (the released code's
"channel averaging"); at :math:`t^\ast = 1` (Tree-Ring) it is the marked branch as it comes. Detection inverts each
image, attacked or not, back to :math:`t^\ast` along the same grid and scores it
(:func:`~lowdim.watermark.watermark_score`); a cell's ROC compares the marked images with their clean twins under the
same attack, with the same random draws.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve
from tqdm.auto import tqdm

from .._checks import check_batch, check_positive_int
from ..factors import SceneFit, fit_scene_factors
from ..jacobian import BatchedJacobian, jacobian_svd
from ..samplers import invert, sample, time_grid
from ..watermark import (
    BANDS,
    WatermarkKey,
    brightness,
    gaussian_blur,
    gaussian_noise,
    inject_watermark,
    jpeg,
    watermark_key,
    watermark_score,
)
from .engine import batch_slices, cached_model, run_tasks
from .loco import outside_quality
from .results import NpzResult

Tensor = torch.Tensor
ATTACKS = ("clean", "jpeg25", "blur0.5", "blur1", "noise0.1", "brightness")
SVD_ITERS = 12  # block Krylov iterations at most for the null-space basis (tol 1e-3)
FACTOR_NAMES = tuple(
    f"{name} {j}" for j in (1, 2) for name in ("kind", "x", "y", "radius", "red", "green", "blue")
)  # fmt: skip


class KeySpec(NamedTuple):
    """A key's geometry: ``band`` (``"low"``/``"high"``) and the disc or annulus ``(inner, radius]``."""

    band: str
    radius: float
    inner: float = 0.0


class Cell(NamedTuple):
    """One setting of the study: injection time, key, and whether the change is projected into the null space."""

    t: float
    key: KeySpec
    null_space: bool = False


def apply_attack(name: str, x: Tensor, seed: int) -> Tensor:
    """Attack ``name`` (one of ``ATTACKS``) on images ``x`` ``(B, 3, S, S)`` in [-1, 1]; the random attacks draw
    from generators seeded ``seed`` (noise) and ``seed + 1`` (brightness factor), so twins see the same draws."""
    if name == "clean":
        return x
    if name == "jpeg25":
        return jpeg(x, 25)
    if name.startswith("blur"):
        return gaussian_blur(x, float(name[4:]))
    if name == "noise0.1":
        return gaussian_noise(x, 0.1, torch.Generator().manual_seed(seed))
    if name == "brightness":
        return brightness(x, generator=torch.Generator().manual_seed(seed + 1))
    raise ValueError(f"name must be one of {ATTACKS}, got {name!r}")


def factor_table(fit: SceneFit) -> np.ndarray:
    """``(n, 14)``: per fitted object (left to right) its kind, centre x, y, radius and colour, as in
    ``FACTOR_NAMES``."""
    per_object = torch.cat([fit.kind[..., None].to(fit.center.dtype), fit.center, fit.radius[..., None], fit.colour],
                           dim=-1)  # fmt: skip
    return per_object.reshape(len(fit.kind), -1).double().numpy()


def _fit(images: Tensor) -> np.ndarray:
    return factor_table(fit_scene_factors(images.clamp(-1, 1), steps=200))


def shared_grid(schedule, steps: int, t_stars: Sequence[float]) -> Tensor:
    """The sampling grid of the study: :func:`~lowdim.samplers.time_grid` ``(schedule, steps)`` with the injection
    times inserted, decreasing from 1 to 0 (float64)."""
    grid = torch.cat([time_grid(schedule, steps), torch.tensor([float(t) for t in t_stars], dtype=torch.float64)])
    return torch.unique(grid).flip(0)


def clean_branch(model: Callable, noise: Tensor, grid: Tensor, times: Sequence[float]) -> tuple[Tensor, dict]:
    """Sample ``noise`` ``(N, C, S, S)`` down ``grid`` (DDIM with ``model`` and its ``schedule``), keeping the state at
    each of ``times`` (grid points, e.g. of :func:`shared_grid`). Returns the clean images clipped to [-1, 1] and a
    dict ``{t: x_t}`` keyed by the given times."""
    states: dict[float, Tensor] = {}

    def keep(info: dict) -> None:
        for t in times:  # the sampler runs the grid in the noise's dtype: match within its precision
            if abs(float(info["t"]) - t) < 1e-6:
                states[t] = info["x"].clone()

    clean = sample(model, noise, model.schedule, method="ddim", t_grid=grid, callback=keep).clamp(-1, 1)
    return clean, states


def below(grid: Tensor, t: float) -> Tensor:
    """The part of ``grid`` from ``t`` down to 0."""
    return grid[grid <= t + 1e-12]


@dataclasses.dataclass
class WatermarkStudy(NpzResult):
    """Raw records of :func:`watermark_study`: per cell ``c``, attack ``a`` and image ``i`` the detection scores of
    the marked image and of its clean twin, the marked image's PSNR/SSIM against its twin, the first-order leak
    :math:`\\|J\\Delta x\\|/\\|\\Delta x\\|` of the injected change at :math:`t^\\ast`, and fitted scene factors."""

    t: np.ndarray  # (C,) cell fields
    band: list[str]
    radius: np.ndarray  # (C,)
    inner: np.ndarray  # (C,)
    null_space: np.ndarray  # (C,) bool
    attacks: list[str]  # (A,)
    marked: np.ndarray  # (C, A, N) detection scores of the marked images
    clean: np.ndarray  # (C, A, N) ... of their clean twins (the cell's key)
    psnr: np.ndarray  # (C, N) dB, peak-to-peak 2, marked against clean twin
    ssim: np.ndarray  # (C, N)
    leak: np.ndarray  # (C, N) ||J dx|| / ||dx|| at t*
    change: np.ndarray  # (C, N) ||dx|| / sqrt(d): RMS of the injected change at t*
    factors: np.ndarray  # (C, N, 14) fitted factors of the marked images (NaN where not fitted)
    clean_factors: np.ndarray  # (N, 14) of the clean twins
    reference_factors: np.ndarray  # (M, 14) of independent clean generations
    steps: int
    null_rank: int
    channel: int
    key_seed: int
    seconds: float  # wall time of the study (all cells, all images)

    def cells(self) -> list[Cell]:
        """The study's cells, one per row of every per-cell array."""
        return [Cell(float(t), KeySpec(b, float(r), float(i)), bool(n))
                for t, b, r, i, n in zip(self.t, self.band, self.radius, self.inner, self.null_space)]  # fmt: skip

    def index(self, cell: Cell) -> int:
        """The row of ``cell`` (``ValueError`` if the study did not run it)."""
        try:
            return self.cells().index(cell)
        except ValueError:
            raise ValueError(f"cell {cell} is not in the study") from None

    def _pair(self, c: int, attack: str) -> tuple[np.ndarray, np.ndarray]:
        a = self.attacks.index(attack)
        scores = np.r_[self.marked[c, a], self.clean[c, a]]
        return np.r_[np.ones(self.marked.shape[-1]), np.zeros(self.clean.shape[-1])], scores

    def auc(self, c: int, attack: str = "clean") -> float:
        """Area under the ROC of cell ``c``'s marked images against their clean twins under ``attack``."""
        return float(roc_auc_score(*self._pair(c, attack)))

    def tpr_at(self, c: int, attack: str = "clean", fpr: float = 0.01) -> float:
        """True-positive rate at false-positive rate ``fpr`` (the ROC's largest TPR with FPR at most ``fpr``)."""
        false, true, _ = roc_curve(*self._pair(c, attack))
        return float(true[false <= fpr].max())

    def factor_distance(self, c: int | None = None) -> float:
        """Largest two-sample Kolmogorov–Smirnov statistic over the 14 fitted factors between cell ``c``'s marked
        images (``None``: the clean twins) and the independent clean generations."""
        sample = self.clean_factors if c is None else self.factors[c]
        ks = [stats.ks_2samp(sample[:, f], self.reference_factors[:, f], method="asymp").statistic
              for f in range(sample.shape[1])]  # fmt: skip
        return float(max(ks))

    def summary(self, c: int) -> dict[str, float]:
        """Cell ``c`` in one row: median PSNR/SSIM, mean leak, AUC and TPR at 1 % FPR under every attack."""
        row = {"psnr": float(np.median(self.psnr[c])), "ssim": float(np.median(self.ssim[c])),
               "leak": float(self.leak[c].mean())}  # fmt: skip
        for attack in self.attacks:
            row[f"auc {attack}"] = self.auc(c, attack)
            row[f"tpr {attack}"] = self.tpr_at(c, attack)
        return row


def marked_twin(model: Callable, x_t: Tensor, key: WatermarkKey, clean: Tensor, t_grid: Tensor,
                null_space: Tensor | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    r"""The marked twin of ``clean`` ``(N, C, S, S)``, the image the state ``x_t`` at ``t_grid[0]`` became: ``key``
    injected into ``x_t`` (projected off ``null_space`` if given), sampled down ``t_grid`` (DDIM) and clipped to
    [-1, 1]; below :math:`t^\ast = 1` only the key's channel is taken from it, the others from ``clean``. Returns the
    image and the injected change :math:`\Delta x` ``(N, C, S, S)``."""
    x_w = inject_watermark(x_t, key, null_space=null_space)
    image = sample(model, x_w, model.schedule, method="ddim", t_grid=t_grid).clamp(-1, 1)
    if float(t_grid[0]) < 1:  # channel averaging
        ch = key.channel
        image = torch.cat([clean[:, :ch], image[:, ch : ch + 1], clean[:, ch + 1 :]], 1)
    return image, x_w - x_t


def _keys(
    cells: Sequence[Cell], size: int, channel: int, key_seed: int, dtype: torch.dtype
) -> dict[KeySpec, WatermarkKey]:
    """One key per geometry, each drawn from a generator seeded ``key_seed``: keys of one band share their ring
    values."""
    return {spec: watermark_key(size, spec.radius, spec.band, channel, spec.inner,
                                torch.Generator().manual_seed(key_seed), dtype)
            for spec in dict.fromkeys(cell.key for cell in cells)}  # fmt: skip


def _check_cells(cells: Sequence[Cell]) -> list[Cell]:
    cells = [Cell(*c) if not isinstance(c, Cell) else c for c in cells]
    if not cells:
        raise ValueError("cells must name at least one Cell")
    for cell in cells:
        if not 0 < cell.t <= 1 or cell.key.band not in BANDS:
            raise ValueError(f"each cell needs t in (0, 1] and a band in {BANDS}, got {cell}")
    return cells


def watermark_study(
    model: Callable,
    noise: Tensor,
    cells: Sequence[Cell],
    *,
    steps: int = 25,
    null_rank: int = 20,
    channel: int = 0,
    key_seed: int = 0,
    seed: int = 0,
    attacks: Sequence[str] = ATTACKS,
    fit_factors: bool = True,
    reference: Tensor | None = None,
    grid_times: Sequence[float] = (),
    progress: bool = False,
) -> WatermarkStudy:
    """Run ``cells`` on the noises ``noise`` ``(N, 3, S, S)`` (module docstring) with ``model`` (a denoiser with a
    ``schedule``) and DDIM on :func:`shared_grid` ``(steps, times)``, the times being the cells' and ``grid_times``
    (give a study of some cells the full study's times to reproduce its images). The null-space cells project the
    change off the top ``null_rank`` right singular vectors of the Jacobian at :math:`x_{t^\\ast}`
    (:func:`~lowdim.jacobian.jacobian_svd`, start block seeded ``seed + 100 + j`` for the ``j``-th of the times);
    the random attacks use the seeds ``seed`` and ``seed + 1`` (:func:`apply_attack`). With ``fit_factors`` the
    scene factors of every clean twin and of the marked images of every cell are fitted; ``reference`` (noises of
    independent clean generations) adds theirs. Every draw depends on the seeds and the image's row alone, so a
    study of the first rows of ``noise`` reproduces those rows of the full study (up to the Jacobian SVD's stopping
    test, which looks at the whole batch)."""
    start = time.perf_counter()
    noise = check_batch(noise, "noise")
    if noise.dim() != 4:
        raise ValueError(f"noise must have shape (N, C, S, S), got {tuple(noise.shape)}")
    cells = _check_cells(cells)
    steps, null_rank = check_positive_int(steps, "steps"), check_positive_int(null_rank, "null_rank")
    for attack in attacks:
        if attack not in ATTACKS:
            raise ValueError(f"attacks must be drawn from {ATTACKS}, got {attack!r}")
    schedule = model.schedule
    N, size = noise.shape[0], noise.shape[-1]
    keys = _keys(cells, size, channel, key_seed, noise.dtype)
    t_stars = sorted({cell.t for cell in cells} | {float(t) for t in grid_times})
    grid = shared_grid(schedule, steps, t_stars)

    clean, states = clean_branch(model, noise, grid, t_stars)
    C, A = len(cells), len(attacks)
    marked_scores, clean_scores = np.full((C, A, N), np.nan), np.full((C, A, N), np.nan)
    psnr, ssim, leak, change = (np.full((C, N), np.nan) for _ in range(4))
    factors = np.full((C, N, len(FACTOR_NAMES)), np.nan)
    bar = tqdm(total=C, desc="cells", disable=not progress)
    for j, t in enumerate(t_stars):
        here = [c for c, cell in enumerate(cells) if cell.t == t]
        if not here:
            continue
        sub = below(grid, t)
        x_t = states[t]

        def detect(images: Tensor, t: float = t, sub: Tensor = sub) -> list[Tensor]:
            return [invert(model, apply_attack(a, images, seed), schedule, t, t_grid=sub) for a in attacks]

        inverted_clean = detect(clean)
        V = None
        if any(cells[c].null_space for c in here):
            V = jacobian_svd(model, x_t, t, null_rank, tol=1e-3, max_iters=SVD_ITERS,
                             generator=torch.Generator().manual_seed(seed + 100 + j)).V.detach()  # fmt: skip
        deltas = []
        for c in here:
            key = keys[cells[c].key]
            image, delta = marked_twin(model, x_t, key, clean, sub, V if cells[c].null_space else None)
            deltas.append(delta.reshape(N, -1))
            for a, (attacked, twin) in enumerate(zip(detect(image), inverted_clean)):
                marked_scores[c, a] = watermark_score(attacked, key).numpy()
                clean_scores[c, a] = watermark_score(twin, key).numpy()
            _, psnr[c], ssim[c] = outside_quality(image, clean, torch.zeros_like(clean[:, :1]))
            if fit_factors:
                factors[c] = _fit(image)
            bar.update()
        delta = torch.stack(deltas, -1)  # (N, d, cells here)
        Jdelta = BatchedJacobian(model, x_t, t, delta.shape[-1]).jvp(delta).detach()
        leak[here] = (Jdelta.norm(dim=1) / delta.norm(dim=1)).T.numpy()
        change[here] = (delta.norm(dim=1) / delta.shape[1] ** 0.5).T.numpy()
    bar.close()
    clean_factors = _fit(clean) if fit_factors else np.full((N, len(FACTOR_NAMES)), np.nan)
    reference_factors = np.zeros((0, len(FACTOR_NAMES)))
    if reference is not None:
        reference_factors = _fit(sample(model, check_batch(reference, "reference"), schedule, method="ddim",
                                        t_grid=grid))  # fmt: skip
    return WatermarkStudy(
        t=np.array([c.t for c in cells]), band=[c.key.band for c in cells],
        radius=np.array([c.key.radius for c in cells]), inner=np.array([c.key.inner for c in cells]),
        null_space=np.array([c.null_space for c in cells]), attacks=list(attacks), marked=marked_scores,
        clean=clean_scores, psnr=psnr, ssim=ssim, leak=leak, change=change, factors=factors,
        clean_factors=clean_factors, reference_factors=reference_factors, steps=steps, null_rank=null_rank,
        channel=channel, key_seed=key_seed, seconds=time.perf_counter() - start,
    )  # fmt: skip


def _watermark_batch(checkpoint: str, cells: list[Cell], settings: dict, task: tuple) -> dict[str, np.ndarray]:
    """One batch of :func:`watermark_study_batches`: ``task`` = ``(noise, reference or None, seed)``."""
    noise, reference, seed = task
    return watermark_study(cached_model(checkpoint), noise, cells, seed=seed, reference=reference,
                           **settings).to_arrays()  # fmt: skip


def watermark_study_batches(
    checkpoint: str,
    noise: Tensor,
    cells: Sequence[Cell],
    *,
    batch_size: int,
    seed: int = 0,
    rows: int | None = None,
    reference: Tensor | None = None,
    batches: Sequence[int] | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
    progress: bool = True,
    **settings,
) -> WatermarkStudy:
    """:func:`watermark_study` of the network in the data file ``checkpoint``
    (:func:`~lowdim.experiments.engine.cached_model`) on the noises in consecutive batches of ``batch_size`` (the
    first ``rows`` of each when given), each batch a task of :func:`~lowdim.experiments.engine.run_tasks`
    (``workers``, ``scheduler``, ``store``) with seed ``seed + b`` (``b`` the batch's index), merged (:func:`merge`).
    ``reference`` noises are split like ``noise``; ``settings`` go to :func:`watermark_study`."""
    noise = check_batch(noise, "noise")
    rows = None if rows is None else check_positive_int(rows, "rows")
    tasks = []
    for b, batch in batch_slices(noise.shape[0], batch_size, batches):
        part = batch if rows is None else slice(batch.start, min(batch.stop, batch.start + rows))
        tasks.append((noise[part], None if reference is None else reference[part], seed + b))
    compute = partial(_watermark_batch, checkpoint, _check_cells(cells), settings)
    done = run_tasks(compute, tasks, workers=workers, scheduler=scheduler, store=store, progress=progress,
                     desc="watermark batches")  # fmt: skip
    return merge([WatermarkStudy.from_arrays(part) for part in done])


def merge(parts: Sequence[WatermarkStudy]) -> WatermarkStudy:
    """Studies of the same cells on different images, concatenated along the images (times added)."""
    first = parts[0]
    for part in parts[1:]:
        if part.cells() != first.cells() or part.attacks != first.attacks:
            raise ValueError("parts must run the same cells and attacks")
    joined = {name: np.concatenate([getattr(p, name) for p in parts], axis=-1)
              for name in ("marked", "clean", "psnr", "ssim", "leak", "change")}  # fmt: skip
    joined["factors"] = np.concatenate([p.factors for p in parts], axis=1)
    for name in ("clean_factors", "reference_factors"):
        joined[name] = np.concatenate([getattr(p, name) for p in parts], axis=0)
    joined["seconds"] = float(sum(p.seconds for p in parts))
    return dataclasses.replace(first, **joined)
