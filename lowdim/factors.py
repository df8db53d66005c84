r"""Recover the latent factors of two-object scenes (:func:`~lowdim.data.scenes`) by analysis-by-synthesis.

For an image :math:`y`, find the factors :math:`z` (per object: kind, centre, radius, colour) whose rendering
:math:`R(z)` (:func:`~lowdim.data.render_scenes`) is closest to it,

.. math:: \hat z = \arg\min_z \|R(z) - y\|^2 ,

so any image — a training scene, a network's sample, an edited image — can be scored with the factors that made it.
The continuous factors are fitted by Adam from an initialization read off the image (the two largest connected
foreground regions: their centroids, areas and mean colours, :func:`scipy.ndimage.label`), once for each of the
four kind combinations; the best fit wins. The root-mean-square residual per pixel tells how well the scene model
explains the image: near 0 for a crisp rendering, large for a blur, a smear or a third object.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from ._checks import check_batch, check_positive, check_positive_int
from .data import render_scenes

Tensor = torch.Tensor
FOREGROUND = -0.8  # a pixel is foreground when its brightest channel exceeds this (background: -1)


class SceneFit(NamedTuple):
    """:func:`fit_scene_factors` result for ``n`` images: the factors (as :func:`~lowdim.data.scenes` returns them,
    objects ordered left to right by their centre's x) and the RMS residual per pixel and channel ``(n,)``."""

    kind: Tensor  # (n, 2) long
    center: Tensor  # (n, 2, 2) pixels (x, y)
    radius: Tensor  # (n, 2)
    colour: Tensor  # (n, 2, 3)
    residual: Tensor  # (n,)

    def latents(self) -> dict[str, Tensor]:
        """The factors as a dict, like the second value :func:`~lowdim.data.scenes` returns."""
        return {"kind": self.kind, "center": self.center, "radius": self.radius, "colour": self.colour}


def _initial_factors(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres ``(2, 2)``, radii ``(2,)`` and colours ``(2, 3)`` of the two largest foreground regions of one image
    ``(3, S, S)``; a missing second region starts as a small object in the largest one's place, shifted."""
    size = image.shape[-1]
    labels, count = ndimage.label(image.max(0) > FOREGROUND)
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1)) if count else np.zeros(0)
    order = np.argsort(-areas)[:2] + 1
    centers, radii, colours = [], [], []
    for region in order:
        ys, xs = np.nonzero(labels == region)
        centers.append([xs.mean() + 0.5, ys.mean() + 0.5])
        radii.append(max(1.0, 0.5 * math.sqrt(len(xs))))
        colours.append(image[:, ys, xs].mean(1))
    while len(centers) < 2:  # fewer than two regions: a placeholder the fit may move or shrink
        base = centers[0] if centers else [size / 2, size / 2]
        centers.append([min(size - 2.0, base[0] + size / 4), base[1]])
        radii.append(2.0)
        colours.append(np.zeros(3))
    return np.array(centers), np.array(radii), np.array(colours)


def fit_scene_factors(images: Tensor, steps: int = 300, lr: float = 0.1) -> SceneFit:
    """Fit the two objects' factors to each of ``images`` ``(n, 3, S, S)`` (values in [-1, 1]) by analysis-by-synthesis
    (module docstring): ``steps`` Adam steps with learning rate ``lr`` on the squared error, for all images and all
    four kind combinations at once; returns the best combination's fit per image (float64, on the CPU)."""
    images = check_batch(images, "images")
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must have shape (n, 3, S, S), got {tuple(images.shape)}")
    steps = check_positive_int(steps, "steps")
    check_positive(lr, "lr")
    target = images.detach().to("cpu", torch.float64)
    n, size = target.shape[0], target.shape[-1]
    init = [_initial_factors(img) for img in target.numpy()]
    center0 = torch.tensor(np.stack([c for c, _, _ in init]))
    radius0 = torch.tensor(np.stack([r for _, r, _ in init]))
    colour0 = torch.tensor(np.stack([c for _, _, c in init]))
    combos = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])  # kinds of (object 0, object 1)
    kind = combos.repeat(n, 1)  # (4 n, 2): image i's combinations at rows 4 i .. 4 i + 3
    center = center0.repeat_interleave(4, 0).clone().requires_grad_(True)
    log_radius = radius0.log().repeat_interleave(4, 0).clone().requires_grad_(True)
    colour = colour0.repeat_interleave(4, 0).clone().requires_grad_(True)
    goal = target.repeat_interleave(4, 0)
    optimizer = torch.optim.Adam([center, log_radius, colour], lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        render = render_scenes(kind, center, log_radius.exp(), colour, size)
        loss = (render - goal).pow(2).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay.step()
    with torch.no_grad():
        radius = log_radius.exp()
        rms = (render_scenes(kind, center, radius, colour, size) - goal).pow(2).mean((1, 2, 3)).sqrt()
        best = rms.reshape(n, 4).argmin(1) + 4 * torch.arange(n)
        fit = [kind[best], center[best], radius[best], colour[best].clamp(-1, 1)]
        order = fit[1][:, :, 0].argsort(1)  # objects left to right
        fit = [f.gather(1, order.reshape(n, 2, *([1] * (f.dim() - 2))).expand_as(f)) for f in fit]
        return SceneFit(*fit, rms[best])
