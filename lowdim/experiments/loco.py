r"""Objective evaluation of LOCO edits on two-object scenes, with the factors that made each image as ground truth.

Every image (the λ = 0 reconstruction and each edit) is explained by its fitted factors
(:func:`~lowdim.factors.fit_scene_factors`); an edit is scored by how those factors moved. Per object the change is
a 6-vector :math:`\Delta z = (\Delta\text{colour}_{1:3}, \Delta\text{centre}_{1:2}, \Delta\text{radius})` (colour in
[-1, 1] units, centre and radius in pixels), grouped into three factor groups whose sizes, in units of their
thresholds :math:`\tau` (:data:`THRESHOLDS`), are

.. math:: g_\text{colour} = \max_c|\Delta\text{colour}_c|/\tau_c,\quad
          g_\text{position} = \|\Delta\text{centre}\|/\tau_p,\quad g_\text{size} = |\Delta\text{radius}|/\tau_s .

An edit of the object under the mask :math:`\Omega` is a **local edit success** when

1. exactly one group of the edited object changes (:math:`g \ge 1` for one group, :math:`g < 1` for the other two)
   and its kind (disc or square) stays;
2. the other object does not change (all its :math:`g < 1`, same kind);
3. the pixels outside :math:`\Omega` change little: root-mean-square change below :math:`\tau_\text{out}`.

All changes are measured against the λ = 0 reconstruction (invert, then denoise back unchanged), so inversion error
is not counted as edit error. :func:`edit_study` runs a list of :class:`EditSpec` on a batch of scenes and returns
the raw records (:class:`EditStudy`); the scores above are computed from them on demand, so thresholds can be varied
without recomputing anything.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from skimage.metrics import structural_similarity
from tqdm.auto import tqdm

from .._checks import check_batch, check_positive_int
from .._random import rand, randn
from ..data import SCENE_GAP, SCENE_RADIUS, coverage, render_scenes
from ..editing import edit_directions, project_off, step_along
from ..factors import SceneFit, fit_scene_factors
from ..jacobian import jacobian_svd
from ..samplers import invert, sample
from .engine import batch_slices, cached_model, run_tasks
from .results import NpzResult

Tensor = torch.Tensor
#: The factor groups of one object, in the order of :func:`group_sizes`.
GROUPS = ("colour", "position", "size")
#: The edit methods of :class:`EditSpec` (see :func:`edit_study`).
METHODS = ("loco", "masked", "unmasked", "random", "compose", "transfer")


class Thresholds(NamedTuple):
    """Change thresholds of the local-edit test (module docstring)."""

    colour: float = 0.1  # largest channel change, [-1, 1] units (5 % of the range)
    position: float = 0.5  # centre displacement, pixels
    size: float = 0.25  # radius change, pixels (4-6 % of a radius of 4-6.4 px)
    outside: float = 0.02  # RMS change of the pixels outside the mask, [-1, 1] units (PSNR 40 dB)


#: The thresholds the book uses.
THRESHOLDS = Thresholds()
#: The mask is the edited object grown by this many pixels (:func:`object_masks`).
MASK_MARGIN = 2.0


class EditSpec(NamedTuple):
    """One edit applied to every image of a batch: ``method`` (one of :data:`METHODS`), edit time ``t``, null-space
    rank ``null_rank`` (r'), step ``lam`` and the index of the singular vector (``direction``; ``compose`` steps
    along directions ``direction`` and ``direction + 1`` together, each by ``lam``)."""

    method: str
    t: float
    null_rank: int
    lam: float
    direction: int = 0


def object_masks(latents: dict[str, Tensor], target: Tensor, size: int = 32, margin: float = MASK_MARGIN) -> Tensor:
    """Masks ``(n, 1, size, size)`` (0/1) of object ``target[i]`` of each scene grown by ``margin`` pixels, less any
    pixel the other object touches (objects may be as close as ``SCENE_GAP`` pixels)."""
    rows = torch.arange(len(target))

    def cover(j: Tensor, grow: float) -> Tensor:
        return coverage(latents["kind"][rows, j], latents["center"][rows, j], latents["radius"][rows, j], size, grow)

    return ((cover(target, margin) > 0) & ~(cover(1 - target, 0.0) > 0)).to(latents["center"].dtype)[:, None]


def transfer_partners(
    latents: dict[str, Tensor], target: Tensor, generator: torch.Generator | None = None, size: int = 32
) -> tuple[Tensor, dict[str, Tensor]]:
    """Scenes to transfer edits to: each keeps the kind and centre of object ``target[i]`` of scene ``i`` (so the
    object sits under the same mask) and redraws its colour and radius and the other object's colour; a radius that
    would bring the two objects closer than ``SCENE_GAP`` is left as it was. Returns ``(images, latents)``."""
    n = len(target)
    rows = torch.arange(n)
    new = {k: v.clone() for k, v in latents.items()}
    dtype = latents["center"].dtype
    new["colour"] = -0.6 + 1.6 * rand((n, 2, 3), generator, dtype, "cpu")
    radius = SCENE_RADIUS[0] * size + (SCENE_RADIUS[1] - SCENE_RADIUS[0]) * size * rand((n,), generator, dtype, "cpu")
    trial = new["radius"].clone()
    trial[rows, target] = radius
    center = new["center"]
    apart = ((center[:, 0] - center[:, 1]).abs() > (trial.sum(1) + SCENE_GAP)[:, None]).any(1)
    inside = ((center - trial[..., None] - 1 >= 0) & (center + trial[..., None] + 1 <= size)).all(-1).all(-1)
    keep = apart & inside
    new["radius"] = torch.where(keep[:, None], trial, new["radius"])
    return render_scenes(new["kind"], new["center"], new["radius"], new["colour"], size), new


def matched(before: SceneFit, after: SceneFit) -> SceneFit:
    """``after``'s objects reordered to match ``before``'s (the assignment of the two with the smaller total centre
    distance), so object ``j`` of both is the same object even when an edit moved it past the other's x."""
    same = (after.center - before.center).norm(dim=-1).sum(1)
    swap = (after.center.flip(1) - before.center).norm(dim=-1).sum(1)
    perm = torch.where((swap < same)[:, None], torch.tensor([1, 0]), torch.tensor([0, 1]))

    def take(x: Tensor) -> Tensor:
        return x.gather(1, perm.reshape(*perm.shape, *([1] * (x.dim() - 2))).expand_as(x))

    return SceneFit(take(after.kind), take(after.center), take(after.radius), take(after.colour), after.residual)


def factor_vector(fit: SceneFit) -> Tensor:
    """Factors per object ``(n, 2, 6)``: colour (3), centre (2), radius (1)."""
    return torch.cat([fit.colour, fit.center, fit.radius[..., None]], -1)


def group_sizes(change: np.ndarray, thresholds: Thresholds = THRESHOLDS) -> np.ndarray:
    """Sizes ``(..., 3)`` of the colour, position and size groups of factor changes ``(..., 6)`` in units of their
    thresholds (module docstring)."""
    change = np.asarray(change)
    return np.stack([
        np.abs(change[..., :3]).max(-1) / thresholds.colour,
        np.linalg.norm(change[..., 3:5], axis=-1) / thresholds.position,
        np.abs(change[..., 5]) / thresholds.size,
    ], -1)  # fmt: skip


def local_edit_test(change: np.ndarray, other_change: np.ndarray, kind_flip: np.ndarray, outside_rms: np.ndarray,
                    thresholds: Thresholds = THRESHOLDS) -> dict[str, np.ndarray]:  # fmt: skip
    """The local-edit test (module docstring) of edits with factor changes ``(..., 6)`` of the edited and the other
    object, kind flips ``(..., 2)`` and outside RMS ``(...)``: boolean arrays ``changed`` (some group of the edited
    object moved), ``single`` (exactly one did, and the kind stayed), ``other_still``, ``local`` (outside RMS) and
    ``success`` (all of them), and the changed ``group`` (index into :data:`GROUPS`)."""
    g, o = group_sizes(change, thresholds), group_sizes(other_change, thresholds)
    kind_flip = np.asarray(kind_flip, dtype=bool)
    changed = g.max(-1) >= 1
    single = ((g >= 1).sum(-1) == 1) & ~kind_flip[..., 0]
    other_still = (o < 1).all(-1) & ~kind_flip[..., 1]
    local = np.asarray(outside_rms) < thresholds.outside
    return {
        "group": g.argmax(-1), "changed": changed, "single": single, "other_still": other_still,
        "local": local, "success": changed & single & other_still & local,
    }  # fmt: skip


def fitted_index(fit: SceneFit, latents: dict[str, Tensor], obj: Tensor) -> Tensor:
    """Which fitted object (ordered by x) is latent object ``obj[i]`` of each scene ``i``: the one whose fitted centre
    is nearest to the true centre."""
    true = latents["center"][torch.arange(len(obj)), obj].to(fit.center.dtype)
    return (fit.center - true[:, None]).norm(dim=-1).argmin(1)


def _scale(thresholds: Thresholds) -> np.ndarray:
    """Each of the 6 factor changes' threshold."""
    return np.array([thresholds.colour] * 3 + [thresholds.position] * 2 + [thresholds.size])


def outside_quality(edited: Tensor, reference: Tensor, inside: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RMS change, PSNR (dB, peak-to-peak 2) and SSIM (scikit-image's map, averaged over channels and the pixels
    outside the mask) of ``edited`` against ``reference`` ``(n, 3, S, S)`` outside ``inside`` ``(n, 1, S, S)``."""
    a, b = edited.detach().double().cpu().numpy(), reference.detach().double().cpu().numpy()
    out = 1 - inside.detach().double().cpu().numpy()[:, 0]
    sq = ((a - b) ** 2).mean(1)
    mse = (sq * out).sum((1, 2)) / out.sum((1, 2))
    rms = np.sqrt(mse)
    psnr = 10 * np.log10(4.0 / np.maximum(mse, 1e-12))
    ssim = np.empty(len(a))
    for i in range(len(a)):
        _, full = structural_similarity(a[i], b[i], data_range=2.0, channel_axis=0, full=True)
        ssim[i] = (full.mean(0) * out[i]).sum() / out[i].sum()
    return rms, psnr, ssim


@dataclasses.dataclass
class EditStudy(NpzResult):
    """Raw records of :func:`edit_study`: for each spec ``c`` and image ``i`` the edited object's and the other
    object's factor changes, kind flips and the change outside the mask; scores come from the methods."""

    method: list[str]  # (C,) spec fields
    t: np.ndarray  # (C,)
    null_rank: np.ndarray  # (C,)
    lam: np.ndarray  # (C,)
    direction: np.ndarray  # (C,)
    change: np.ndarray  # (C, N, 6) edited object: colour (3), centre (2), radius
    other_change: np.ndarray  # (C, N, 6) the other object
    kind_flip: np.ndarray  # (C, N, 2) bool: edited object, other object
    outside_rms: np.ndarray  # (C, N)
    psnr_outside: np.ndarray  # (C, N)
    ssim_outside: np.ndarray  # (C, N)
    pixel_change: np.ndarray  # (C, N) ||edit - reconstruction|| over the whole image
    residual: np.ndarray  # (C, N) RMS residual of the scene fitted to the edited image
    reconstruction_rms: np.ndarray  # (T, N) RMS of reconstruction - x0 per edit time in `times`
    times: np.ndarray  # (T,)
    singular_values: np.ndarray  # (T, N, r) of J_Omega per edit time
    additivity: np.ndarray  # (C, N) compose specs: ||D12 - D1 - D2|| / (||D1|| + ||D2||) in pixels; NaN elsewhere
    seconds_directions: float  # per image, batch of one: the edit directions (masked and complement SVDs)
    seconds_edit: float  # per image, batch of one: invert, step, denoise back (a transfer edit)

    def specs(self) -> list[EditSpec]:
        return [EditSpec(*row) for row in zip(self.method, self.t.tolist(), self.null_rank.tolist(),
                                              self.lam.tolist(), self.direction.tolist())]  # fmt: skip

    def rows(self, **match) -> np.ndarray:
        """Indices of the specs whose fields equal ``match`` (``method="loco", lam=2.0``; floats to 1e-9)."""
        keep = np.ones(len(self.method), dtype=bool)
        for name, value in match.items():
            column = np.asarray(self.method if name == "method" else getattr(self, name))
            keep &= (column == value) if name == "method" else np.isclose(column.astype(float), value, atol=1e-9)
        return np.nonzero(keep)[0]

    def outcomes(self, thresholds: Thresholds = THRESHOLDS) -> dict[str, np.ndarray]:
        """Boolean ``(C, N)`` arrays of the local-edit test (module docstring) and the changed group ``(C, N)``:
        ``changed`` (some group of the edited object moved), ``single`` (exactly one did, and the kind stayed),
        ``other_still``, ``local`` (outside RMS) and ``success`` (all of them)."""
        return local_edit_test(self.change, self.other_change, self.kind_flip, self.outside_rms, thresholds)

    def success_rate(self, rows: Sequence[int], thresholds: Thresholds = THRESHOLDS) -> float:
        """Fraction of local edit successes over the specs ``rows`` and all images."""
        return float(self.outcomes(thresholds)["success"][np.asarray(rows)].mean())

    def transfer(self, source: int, target: int, thresholds: Thresholds = THRESHOLDS) -> np.ndarray:
        """Per image ``(N,)`` bool: the edit of spec ``target`` (a ``transfer`` spec, on the partner scene) passes the
        local test and changes the same group, with the same sign, as spec ``source`` on the image the direction
        came from (the sign: the two changes of that group point the same way)."""
        out = self.outcomes(thresholds)
        same_group = out["group"][source] == out["group"][target]
        a, b = self.change[source], self.change[target]
        slices = [slice(0, 3), slice(3, 5), slice(5, 6)]
        sign = np.array([(a[i, slices[k]] * b[i, slices[k]]).sum() > 0 for i, k in enumerate(out["group"][source])])
        return out["success"][target] & same_group & sign

    def homogeneity(self, source: int, target: int, thresholds: Thresholds = THRESHOLDS) -> np.ndarray:
        """Cosine similarity ``(N,)`` between the factor changes (in threshold units) of the same direction on the
        source image (spec ``source``) and on its partner (spec ``target``): 1 when it means the same edit."""
        a, b = self.change[source] / _scale(thresholds), self.change[target] / _scale(thresholds)
        return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)

    def best_settings(self, thresholds: Thresholds = THRESHOLDS) -> dict:
        """The sweep's choice (``data/make_loco.py``): the ``t``, ``null_rank`` and ``lam`` whose ``loco`` edits along
        the top direction (both signs, ``±lam``) have the highest local edit success; ties go to the smaller step, then
        the earlier time. ``rank``: how many directions ``v_j`` keep at least half of ``v_1``'s success at that
        ``t`` and step with the largest ``null_rank`` swept for every direction. Also returns ``success`` (the best
        rate) and ``direction_success`` (per direction)."""
        out = self.outcomes(thresholds)["success"]
        loco = np.array([m == "loco" for m in self.method])
        best, key = None, None
        for t in np.unique(self.t[loco]):
            for r in np.unique(self.null_rank[loco & (self.direction == 0)]):
                for lam in np.unique(np.abs(self.lam[loco])):
                    rows = np.nonzero(loco & (self.t == t) & (self.null_rank == r) & (self.direction == 0)
                                      & np.isclose(np.abs(self.lam), lam))[0]  # fmt: skip
                    if len(rows) == 0:
                        continue
                    score = (float(out[rows].mean()), -float(lam), -float(t))
                    if key is None or score > key:
                        best, key = {"t": float(t), "null_rank": int(r), "lam": float(lam)}, score
        at = loco & (self.t == best["t"]) & np.isclose(np.abs(self.lam), best["lam"])
        r_all = max(int(r) for r in np.unique(self.null_rank[at]) if set(self.direction[at & (self.null_rank == r)])
                    == set(self.direction[at]))  # fmt: skip
        rates = [float(out[at & (self.null_rank == r_all) & (self.direction == j)].mean())
                 for j in sorted(set(self.direction[at].tolist()))]  # fmt: skip
        best["rank"] = int(sum(r >= 0.5 * rates[0] for r in rates))
        best["success"], best["direction_success"] = key[0], rates
        return best

    def linearity(self, rows: Sequence[int], thresholds: Thresholds = THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
        r"""For specs ``rows`` that differ only in λ (with λ = 0 the reconstruction, change 0): per image the
        :math:`R^2` of the least-squares line through the origin of the factor change against λ, along the unit
        direction of the change at the largest positive λ, and whether the smallest negative λ reverses it (its
        change points the other way). Returns ``(r2 (N,), reverses (N,))``."""
        rows = np.asarray(rows)
        lam = self.lam[rows].astype(float)
        changes = self.change[rows] / _scale(thresholds)  # (L, N, 6)
        top = changes[np.argmax(lam)]
        unit = top / np.maximum(np.linalg.norm(top, axis=-1, keepdims=True), 1e-12)
        y = np.concatenate([np.zeros((1, changes.shape[1])), (changes * unit).sum(-1)])  # (L + 1, N)
        x = np.concatenate([[0.0], lam])[:, None]
        slope = (x * y).sum(0) / (x * x).sum()
        resid = ((y - slope * x) ** 2).sum(0)
        total = ((y - y.mean(0)) ** 2).sum(0)
        r2 = 1 - resid / np.maximum(total, 1e-12)
        reverse = y[1 + np.argmin(np.where(lam < 0, -lam, np.inf))] < 0
        return r2, reverse


def _fits(images: Tensor) -> SceneFit:
    return fit_scene_factors(images.clamp(-1, 1), steps=200)


def edit_study(
    model,
    x0: Tensor,
    latents: dict[str, Tensor],
    target: Tensor,
    specs: Sequence[EditSpec],
    *,
    rank: int = 5,
    steps: int = 50,
    partners: tuple[Tensor, dict[str, Tensor]] | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> EditStudy:
    """Run ``specs`` on the scenes ``x0`` ``(N, 3, S, S)`` with ``latents`` (:func:`~lowdim.data.scenes`), editing
    object ``target[i]`` of scene ``i`` inside its mask (:func:`object_masks`): per edit time, invert (DDIM,
    ``steps``), reconstruct, find ``rank`` directions of :math:`J_\\Omega` and the complement's top ``max null_rank``
    (:func:`~lowdim.editing.edit_directions`), then edit, denoise back and fit the factors of each result.

    Methods: ``loco`` (masked, projected off the complement's top ``null_rank``), ``masked`` (no projection),
    ``unmasked`` (top right singular vectors of the full Jacobian), ``random`` (a Gaussian direction projected like
    ``loco``), ``compose`` (``loco`` directions ``direction`` and ``direction + 1`` together) and ``transfer`` (the
    ``loco`` direction of scene ``i`` applied to ``partners`` scene ``i``: :func:`transfer_partners`).
    ``generator`` draws the SVD start blocks and the random directions, edit time after edit time (increasing), so
    a study of a subset of the specs reproduces the full study's records only for the first time. Times are left at
    0 (see :func:`time_edit`)."""
    x0 = check_batch(x0, "x0")
    rank = check_positive_int(rank, "rank")
    specs = [EditSpec(*s) for s in specs]
    for s in specs:
        if s.method not in METHODS:
            raise ValueError(f"specs: method must be one of {METHODS}, got {s.method!r}")
        if s.direction + (s.method == "compose") >= rank:
            raise ValueError(f"specs: direction {s.direction} needs rank > {s.direction + (s.method == 'compose')}")
        if s.method == "transfer" and partners is None:
            raise ValueError("specs: transfer edits need partners")
    n = x0.shape[0]
    inside = object_masks(latents, target).to(x0.dtype)
    C = len(specs)
    change, other_change = np.zeros((C, n, 6)), np.zeros((C, n, 6))
    kind_flip = np.zeros((C, n, 2), dtype=bool)
    rms, psnr, ssim, pixel, residual = (np.zeros((C, n)) for _ in range(5))
    additivity = np.full((C, n), np.nan)
    times = sorted({s.t for s in specs})
    recon_rms, singular = np.zeros((len(times), n)), np.zeros((len(times), n, rank))
    rows = torch.arange(n)

    def denoise(x_t: Tensor, t: float) -> Tensor:
        return sample(model, x_t, model.schedule, steps=steps, method="ddim", t_start=t)

    def record(c: int, edited: Tensor, reference: Tensor, fit_ref: SceneFit, mask: Tensor, edited_obj: Tensor):
        fit = matched(fit_ref, _fits(edited))
        delta = factor_vector(fit) - factor_vector(fit_ref)
        change[c] = delta[rows, edited_obj].numpy()
        other_change[c] = delta[rows, 1 - edited_obj].numpy()
        flips = (fit.kind != fit_ref.kind).numpy()
        kind_flip[c] = np.stack([flips[rows, edited_obj], flips[rows, 1 - edited_obj]], -1)
        rms[c], psnr[c], ssim[c] = outside_quality(edited, reference, mask)
        pixel[c] = (edited - reference).flatten(1).norm(dim=1).numpy()
        residual[c] = fit.residual.numpy()

    for ti, t in enumerate(times):
        here = [c for c, s in enumerate(specs) if s.t == t]
        x_t = invert(model, x0, model.schedule, t, steps)
        recon = denoise(x_t, t)
        recon_rms[ti] = (recon - x0).flatten(1).pow(2).mean(1).sqrt().numpy()
        fit_recon = _fits(recon)
        edited_obj = fitted_index(fit_recon, latents, target)
        null_max = max(specs[c].null_rank for c in here)
        dirs = edit_directions(model, x_t, t, inside, rank=rank, null_rank=null_max, generator=generator)
        singular[ti] = dirs.singular_values.numpy()
        unmasked = None
        if any(specs[c].method == "unmasked" for c in here):
            unmasked = jacobian_svd(model, x_t, t, rank, generator=generator).V
        partner = None
        if any(specs[c].method == "transfer" for c in here):
            p_x0, p_lat = partners
            p_xt = invert(model, p_x0.to(x0.dtype), model.schedule, t, steps)
            p_recon = denoise(p_xt, t)
            p_fit = _fits(p_recon)
            partner = (p_xt, p_recon, p_fit, fitted_index(p_fit, p_lat, target), object_masks(p_lat, target))
        single_deltas: dict[tuple, Tensor] = {}

        def projected(V: Tensor, null_rank: int, complement: Tensor = dirs.complement) -> Tensor:
            return V if null_rank == 0 else project_off(V, complement[..., :null_rank])

        for c in tqdm(here, desc=f"edits at t={t}", disable=not progress, leave=False):
            s = specs[c]
            j = s.direction
            if s.method == "random":
                noise = randn((n, dirs.raw.shape[1], 1), generator, x0.dtype, x0.device)
                V, lam = projected(noise / noise.norm(dim=1, keepdim=True), s.null_rank), s.lam
            elif s.method == "unmasked":
                V, lam = unmasked[..., j : j + 1], s.lam
            elif s.method == "masked":
                V, lam = dirs.raw[..., j : j + 1], s.lam
            elif s.method == "compose":
                V, lam = projected(dirs.raw[..., j : j + 2], s.null_rank), torch.tensor([s.lam, s.lam])
            else:  # loco and transfer
                V, lam = projected(dirs.raw[..., j : j + 1], s.null_rank), s.lam
            if s.method == "transfer":
                p_xt, p_recon, p_fit, p_obj, p_mask = partner
                edited = denoise(step_along(p_xt, V, lam), t)
                record(c, edited, p_recon, p_fit, p_mask, p_obj)
                continue
            edited = denoise(step_along(x_t, V, lam), t)
            record(c, edited, recon, fit_recon, inside, edited_obj)
            if s.method == "loco":
                single_deltas[(s.null_rank, s.lam, j)] = edited - recon
            if s.method == "compose":
                parts = [single_deltas.get((s.null_rank, s.lam, k)) for k in (j, j + 1)]
                if any(p is None for p in parts):
                    parts = [denoise(step_along(x_t, V[..., k : k + 1], s.lam), t) - recon for k in range(2)]
                both = edited - recon
                excess = (both - parts[0] - parts[1]).flatten(1).norm(dim=1)
                additivity[c] = (excess / (parts[0].flatten(1).norm(dim=1) + parts[1].flatten(1).norm(dim=1))).numpy()
    return EditStudy(
        [s.method for s in specs], np.array([s.t for s in specs]), np.array([s.null_rank for s in specs]),
        np.array([s.lam for s in specs]), np.array([s.direction for s in specs]), change, other_change, kind_flip,
        rms, psnr, ssim, pixel, residual, recon_rms, np.array(times), singular, additivity, 0.0, 0.0,
    )  # fmt: skip


def time_edit(model, x0: Tensor, latents: dict[str, Tensor], target: Tensor, t: float, null_rank: int, lam: float,
              rank: int = 5, steps: int = 50, generator: torch.Generator | None = None) -> tuple[float, float]:  # fmt: skip
    """Seconds per image, one image at a time, of finding the edit directions (from the inverted image) and of one
    transfer edit (invert, step along a given direction, denoise back), averaged over the images of ``x0``."""
    inside = object_masks(latents, target).to(x0.dtype)
    learn = edit = 0.0
    for i in range(x0.shape[0]):
        x_t = invert(model, x0[i : i + 1], model.schedule, t, steps)
        start = time.perf_counter()
        dirs = edit_directions(model, x_t, t, inside[i : i + 1], rank=rank, null_rank=null_rank, generator=generator)
        learn += time.perf_counter() - start
        start = time.perf_counter()
        x_t = invert(model, x0[i : i + 1], model.schedule, t, steps)
        sample(model, step_along(x_t, dirs.directions[0, :, :1], lam), model.schedule, steps=steps, method="ddim",
               t_start=t)  # fmt: skip
        edit += time.perf_counter() - start
    return learn / x0.shape[0], edit / x0.shape[0]


def _edit_batch(checkpoint: str, specs: list[EditSpec], rank: int, task: tuple) -> dict[str, np.ndarray]:
    """One batch of :func:`edit_study_batches`: ``task`` = ``(x0, latents, target, partners or None, seed)``."""
    x0, latents, target, partners, seed = task
    study = edit_study(cached_model(checkpoint), x0, latents, target, specs, rank=rank, partners=partners,
                       generator=torch.Generator().manual_seed(seed))  # fmt: skip
    return study.to_arrays()


def edit_study_batches(
    checkpoint: str,
    x0: Tensor,
    latents: dict[str, Tensor],
    target: Tensor,
    specs: Sequence[EditSpec],
    *,
    batch_size: int,
    seed: int = 0,
    rank: int = 5,
    partners: tuple[Tensor, dict[str, Tensor]] | None = None,
    batches: Sequence[int] | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    store: str | Path | None = None,
    progress: bool = True,
) -> EditStudy:
    """:func:`edit_study` of the network in the data file ``checkpoint`` (:func:`~lowdim.experiments.engine.cached_model`)
    on the scenes in consecutive batches of ``batch_size``, each batch a task of
    :func:`~lowdim.experiments.engine.run_tasks` (``workers``, ``scheduler``, ``store``) whose SVD start blocks and
    random directions come from seed ``seed + b`` alone (``b`` the batch's index), merged (:func:`merge`). Only the
    batches ``batches`` when given; ``partners`` (:func:`transfer_partners`) are split like the scenes."""
    x0 = check_batch(x0, "x0")
    tasks = []
    for b, rows in batch_slices(x0.shape[0], batch_size, batches):
        part = None if partners is None else (partners[0][rows], {k: v[rows] for k, v in partners[1].items()})
        tasks.append((x0[rows], {k: v[rows] for k, v in latents.items()}, target[rows], part, seed + b))
    compute = partial(_edit_batch, checkpoint, [EditSpec(*s) for s in specs], rank)
    done = run_tasks(compute, tasks, workers=workers, scheduler=scheduler, store=store, progress=progress,
                     desc="edit batches")  # fmt: skip
    return merge([EditStudy.from_arrays(part) for part in done])


def merge(parts: Sequence[EditStudy]) -> EditStudy:
    """Studies of the same specs on consecutive batches of images, joined along the image axis (times averaged
    weighted by the images)."""
    first = parts[0]
    counts = np.array([p.change.shape[1] for p in parts], dtype=float)
    values = {}
    for field in dataclasses.fields(EditStudy):
        name = field.name
        if name in ("method", "t", "null_rank", "lam", "direction", "times"):
            values[name] = getattr(first, name)
        elif name in ("seconds_directions", "seconds_edit"):
            values[name] = float((np.array([getattr(p, name) for p in parts]) * counts).sum() / counts.sum())
        else:
            values[name] = np.concatenate([getattr(p, name) for p in parts], axis=1)
    return EditStudy(**values)
