r"""Reproducibility (RP) and generalization (GL) scores (Zhang et al. 2024), with a copy-detection embedding we can
build offline.

With :math:`\operatorname{sim}(x, y) = \cos\big(\psi(x), \psi(y)\big)` for an embedding :math:`\psi`,

.. math::
    \text{RP} = \mathbb P\big(\operatorname{sim}(\hat x^A, \hat x^B) > 0.6\big), \qquad
    \text{GL} = 1 - \mathbb P\big(\max_i \operatorname{sim}(\hat x, x^{(i)}) > 0.6\big),

where :math:`(x_1, x_2)` are samples of two models from the same noise and :math:`y_1, \dots, y_N` the training set.
The papers use SSCD (a self-supervised copy-detection network) for :math:`\psi`; it cannot be downloaded here.

:class:`RandomFourierEmbedding` replaces it: random Fourier features (Rahimi & Recht 2007) of the Gaussian kernel
:math:`k(x, y) = \exp(-\|x-y\|^2 / 2h^2)`, whose cosine similarity is :math:`k(x, y)` up to
:math:`O(m^{-1/2})` for :math:`m` features. With :math:`h = \tau\sqrt d` (``rms=τ``),
:math:`M > 0.6 \iff \text{RMS}(x - y) < \tau\sqrt{2\log(1/0.6)} \approx 1.01\,\tau`: "a copy" means "within
:math:`\tau` per pixel, in root mean square". The right :math:`\tau` depends on the data: pick it where it separates
copies from genuinely new images. ``embed=None`` uses the flattened pixels themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

from ._checks import check_batch, check_generator, check_positive, check_positive_int
from ._random import rand, randn

Tensor = torch.Tensor
Embedding = Callable[[Tensor], Tensor]
THRESHOLD = 0.6


class RandomFourierEmbedding:
    r""":math:`\psi(x) = \sqrt{2/m}\,\cos(W x / h + b)`, :math:`W_{ij} \sim \mathcal N(0, 1)`, :math:`b \sim \mathcal U[0, 2\pi)`,
    :math:`h = \tau\sqrt{d}`; ``(B, *shape)`` with ``prod(shape) == dim`` → ``(B, features)``.

    :math:`\langle\psi(x), \psi(y)\rangle \to \exp(-\|x - y\|^2/2h^2)` as ``features`` grows, and
    :math:`\|\psi(x)\|^2 \to 1`, so the cosine similarity is the Gaussian kernel (module docstring). The random
    draw of :math:`W, b` comes from ``generator`` once, at construction: scores made with one embedding all use the
    same :math:`\psi`, and two embeddings built from equally seeded generators are the same.
    """

    def __init__(
        self, dim: int, rms: float = 0.1, features: int = 8192, generator: torch.Generator | None = None
    ) -> None:
        self.dim = check_positive_int(dim, "dim")
        self.rms = check_positive(rms, "rms")
        self.features = check_positive_int(features, "features")
        g = check_generator(generator)
        self._W = randn((dim, features), g, torch.float64, "cpu") / (self.rms * math.sqrt(dim))
        self._b = 2 * math.pi * rand(features, g, torch.float64, "cpu")

    def __call__(self, x: Tensor) -> Tensor:
        x = check_batch(x, "x", self.dim)
        flat = x.reshape(x.shape[0], self.dim)
        W, b = self._W.to(flat), self._b.to(flat)
        return math.sqrt(2 / self.features) * torch.cos(flat @ W + b)

    def __repr__(self) -> str:
        return f"RandomFourierEmbedding(dim={self.dim}, rms={self.rms}, features={self.features})"


def _embedded(x: Tensor, name: str, embed: Embedding | None) -> Tensor:
    x = check_batch(x, name)
    z = x.reshape(x.shape[0], -1) if embed is None else embed(x)
    return F.normalize(z.reshape(z.shape[0], -1), dim=1)


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1 <= threshold < 1:
        raise ValueError(f"threshold must be a number in [-1, 1), got {threshold!r}")
    return float(threshold)


def pair_similarity(x1: Tensor, x2: Tensor, embed: Embedding | None = None) -> Tensor:
    """Cosine similarity ``(B,)`` of the embeddings of matched pairs ``x1[i]``, ``x2[i]`` (both ``(B, *shape)``)."""
    if x1.shape != x2.shape:
        raise ValueError(f"x1 and x2 must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
    return (_embedded(x1, "x1", embed) * _embedded(x2, "x2", embed)).sum(1)


def max_similarity(
    samples: Tensor, train: Tensor, embed: Embedding | None = None, chunk_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """For each of ``samples`` ``(M, *shape)``, the largest cosine similarity to ``train`` ``(N, *shape)`` and the
    index of that training item; both ``(M,)``. ``chunk_size`` samples are compared at a time."""
    if samples.shape[1:] != train.shape[1:]:
        raise ValueError(
            f"samples and train must share the item shape, got {tuple(samples.shape)} and {tuple(train.shape)}"
        )
    a, b = _embedded(samples, "samples", embed), _embedded(train, "train", embed)
    best = [torch.max(a[i : i + chunk_size] @ b.T, dim=1) for i in range(0, len(a), chunk_size)]
    return torch.cat([v.values for v in best]), torch.cat([v.indices for v in best])


def rp_score(x1: Tensor, x2: Tensor, threshold: float = THRESHOLD, embed: Embedding | None = None) -> float:
    r"""Reproducibility score :math:`\mathbb P(\operatorname{sim}(\hat x^A, \hat x^B) > \text{threshold})` over matched pairs ``x1[i]``, ``x2[i]``
    (samples of two models from the same noises)."""
    threshold = _check_threshold(threshold)
    return float((pair_similarity(x1, x2, embed) > threshold).double().mean())


def gl_score(samples: Tensor, train: Tensor, threshold: float = THRESHOLD, embed: Embedding | None = None) -> float:
    r"""Generalization score :math:`1 - \mathbb P(\max_i \operatorname{sim}(\hat x, x^{(i)}) > \text{threshold})`: the fraction of ``samples``
    that are not copies of any item of ``train``."""
    threshold = _check_threshold(threshold)
    best, _ = max_similarity(samples, train, embed)
    return float((best <= threshold).double().mean())
