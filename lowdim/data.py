"""Data sets that need no download."""

from __future__ import annotations

import torch

from ._checks import check_generator
from ._random import rand, randint, randperm

Tensor = torch.Tensor


def digits(
    dtype: torch.dtype | None = None, shuffle: bool = False, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), pixel values 0..16 mapped to [-1, 1].

    Returns ``(images, labels)`` with shapes ``(1797, 1, 8, 8)`` and ``(1797,)``, in scikit-learn's order, or with
    ``shuffle`` permuted by ``torch.randperm(1797, generator=generator)`` (so a training set can be its first N
    images and the rest held out).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=dtype or torch.get_default_dtype()) / 8.0 - 1.0
    images, labels = images.unsqueeze(1), torch.as_tensor(bunch.target, dtype=torch.long)
    if shuffle:
        order = randperm(len(images), check_generator(generator))
        images, labels = images[order], labels[order]
    return images, labels


SHAPE_KINDS = ("disc", "square")


def shapes(
    n: int, size: int = 32, generator: torch.Generator | None = None, dtype: torch.dtype | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    r"""``n`` RGB images ``(n, 3, size, size)`` in [-1, 1] of one anti-aliased disc or square on a black background.

    Each image is a smooth function of six continuous latent factors plus one discrete one, all drawn
    independently and uniformly:

    - ``kind``: 0 = disc, 1 = square (``SHAPE_KINDS``);
    - ``radius`` :math:`\rho \in [0.15, 0.3]\cdot` ``size`` (a square's half side);
    - ``center`` ``(x, y)`` in pixels, with the whole shape inside the frame;
    - ``colour`` RGB in :math:`[-0.6, 1]^3` (the background is :math:`-1`, so every channel has contrast).

    A pixel with centre :math:`p` is covered by :math:`c(p) = \operatorname{clip}(\tfrac12 - s(p), 0, 1)`, where
    :math:`s` is the signed distance to the shape's edge in pixels (:math:`\|p - \text{center}\| - \rho` for a disc,
    :math:`\|p - \text{center}\|_\infty - \rho` for a square), so the set of images of one kind is a 6-dimensional
    manifold in :math:`\mathbb R^{3\cdot\text{size}^2}`: its intrinsic dimension is known exactly.

    Returns ``(images, latents)`` with ``latents`` a dict of ``kind (n,)``, ``center (n, 2)``, ``radius (n,)`` and
    ``colour (n, 3)``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    dtype = dtype or torch.get_default_dtype()

    def uniform(low: float, high: float, *shape: int) -> Tensor:
        return low + (high - low) * rand((n, *shape), generator, dtype, "cpu")

    kind = randint(len(SHAPE_KINDS), (n,), generator)
    radius = uniform(0.15 * size, 0.3 * size)
    center = radius[:, None] + 1 + uniform(0, 1, 2) * (size - 2 - 2 * radius[:, None])
    colour = uniform(-0.6, 1.0, 3)
    images = render_shapes(kind, center, radius, colour, size)
    return images, {"kind": kind, "center": center, "radius": radius, "colour": colour}


def render_shapes(kind: Tensor, center: Tensor, radius: Tensor, colour: Tensor, size: int = 32) -> Tensor:
    """Render the images of :func:`shapes` from their latent factors: ``kind (n,)``, ``center (n, 2)`` (x, y in
    pixels), ``radius (n,)``, ``colour (n, 3)`` → ``(n, 3, size, size)``. Differentiable in the continuous factors."""
    n = kind.shape[0]
    if center.shape != (n, 2) or radius.shape != (n,) or colour.shape != (n, 3):
        raise ValueError(
            f"center, radius and colour must have shapes ({n}, 2), ({n},), ({n}, 3), got "
            f"{tuple(center.shape)}, {tuple(radius.shape)}, {tuple(colour.shape)}"
        )
    return -1 + coverage(kind, center, radius, size)[:, None] * (colour[:, :, None, None] + 1)


def coverage(kind: Tensor, center: Tensor, radius: Tensor, size: int = 32, margin: float = 0.0) -> Tensor:
    r"""Fraction of each pixel covered by the shape, ``(n, size, size)`` in [0, 1]: :math:`\operatorname{clip}(\tfrac12
    - s(p) + \text{margin}, 0, 1)` with :math:`s` the signed distance to the edge (:func:`shapes`); ``margin > 0``
    grows the shape by that many pixels (a mask around an object). Factors as in :func:`render_shapes`."""
    pixel = torch.arange(size, dtype=center.dtype, device=center.device) + 0.5
    dx = pixel[None, None, :] - center[:, 0, None, None]  # (n, 1, size): varies along the width
    dy = pixel[None, :, None] - center[:, 1, None, None]  # (n, size, 1): varies along the height
    r2 = dx**2 + dy**2
    disc = torch.where(r2 > 0, torch.where(r2 > 0, r2, 1.0).sqrt(), 0.0)  # the same values, no NaN gradient at r = 0
    square = torch.maximum(dx.abs(), dy.abs())
    edge = torch.where(kind[:, None, None] == 0, disc, square) - radius[:, None, None]
    return (0.5 - edge + margin).clamp(0, 1)


SCENE_RADIUS = (0.12, 0.2)  # object radii (a square's half side) as fractions of the image size
SCENE_GAP = 2.0  # pixels between the two objects' bounding squares, at least


def scenes(
    n: int, size: int = 32, generator: torch.Generator | None = None, dtype: torch.dtype | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    r"""``n`` RGB scenes ``(n, 3, size, size)`` in [-1, 1] with two objects each on a black background: the test bed
    of local edits, where editing one object must leave the other unchanged.

    Each object is a disc or square as in :func:`shapes` with its own factors, drawn independently and uniformly:
    ``kind``, ``radius`` in ``SCENE_RADIUS`` :math:`\cdot` ``size``, ``center`` with the whole object inside the frame,
    ``colour`` in :math:`[-0.6, 1]^3`. Both centres are redrawn until the two bounding squares are at least
    ``SCENE_GAP`` pixels apart, so the objects never touch and each pixel belongs to at most one.

    Returns ``(images, latents)`` with ``latents`` a dict of ``kind (n, 2)``, ``center (n, 2, 2)``, ``radius (n, 2)``
    and ``colour (n, 2, 3)`` (object ``j`` in ``[:, j]``); :func:`render_scenes` draws them.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    generator = check_generator(generator)
    dtype = dtype or torch.get_default_dtype()

    def uniform(low: float, high: float, *shape: int, rows: int = n) -> Tensor:
        return low + (high - low) * rand((rows, *shape), generator, dtype, "cpu")

    kind = randint(len(SHAPE_KINDS), (n, 2), generator)
    radius = uniform(SCENE_RADIUS[0] * size, SCENE_RADIUS[1] * size, 2)
    colour = uniform(-0.6, 1.0, 2, 3)
    center = radius[..., None] + 1 + uniform(0, 1, 2, 2) * (size - 2 - 2 * radius[..., None])
    while True:
        reach = radius.sum(1) + SCENE_GAP  # bounding squares apart along x or along y
        clash = ((center[:, 0] - center[:, 1]).abs() <= reach[:, None]).all(1)
        if not bool(clash.any()):
            break
        r = radius[clash, :, None]
        center[clash] = r + 1 + uniform(0, 1, 2, 2, rows=int(clash.sum())) * (size - 2 - 2 * r)
    return render_scenes(kind, center, radius, colour, size), {
        "kind": kind, "center": center, "radius": radius, "colour": colour,
    }  # fmt: skip


def render_scenes(kind: Tensor, center: Tensor, radius: Tensor, colour: Tensor, size: int = 32) -> Tensor:
    """Render the scenes of :func:`scenes` from their factors: ``kind (n, J)``, ``center (n, J, 2)``, ``radius (n, J)``,
    ``colour (n, J, 3)`` for ``J`` objects → ``(n, 3, size, size)``: the background plus each object's contribution
    (objects must not overlap). Differentiable in the continuous factors."""
    n, J = kind.shape
    if center.shape != (n, J, 2) or radius.shape != (n, J) or colour.shape != (n, J, 3):
        raise ValueError(
            f"center, radius and colour must have shapes ({n}, {J}, 2), ({n}, {J}), ({n}, {J}, 3), got "
            f"{tuple(center.shape)}, {tuple(radius.shape)}, {tuple(colour.shape)}"
        )
    flat = render_shapes(kind.reshape(-1), center.reshape(-1, 2), radius.reshape(-1), colour.reshape(-1, 3), size)
    return -1 + (flat + 1).reshape(n, J, 3, size, size).sum(1)
