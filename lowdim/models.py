r"""Small trainable denoisers with EDM preconditioning (Karras et al. 2022, Table 1).

In the scaled variables :math:`\tilde x = x/\alpha_t`, :math:`\sigma = \beta_t/\alpha_t` the network :math:`F_\theta` is wrapped as

.. math:: D_\theta(x, t) = c_\text{skip}(\sigma)\,\tilde x + c_\text{out}(\sigma)\,F_\theta\big(c_\text{in}(\sigma)\tilde x,\ c_\text{noise}(\sigma)\big),

:math:`c_\text{skip} = \sigma_d^2/(\sigma^2+\sigma_d^2)`, :math:`c_\text{out} = \sigma\sigma_d/\sqrt{\sigma^2+\sigma_d^2}`,
:math:`c_\text{in} = 1/\sqrt{\sigma^2+\sigma_d^2}`, :math:`c_\text{noise} = \tfrac14\log\sigma`, so that :math:`F_\theta`
sees and predicts unit-variance quantities at every noise level.

Two backbones: :class:`MLPDenoiser` (flattened input, width/depth knobs) and :class:`UNetDenoiser` (a small
convolutional U-Net for ``(C, H, W)`` images). Both record the arguments they were built with in ``.config``,
so :mod:`lowdim.checkpoints` can rebuild them.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import batch_view, check_batch, check_choice, check_positive, check_positive_int, check_time
from ._random import randn, stream
from .schedules import Schedule

Tensor = torch.Tensor


def schedule_config(schedule: Schedule) -> dict:
    """``{"name": "VP", "beta_min": ..., ...}``: enough to rebuild ``schedule`` (see :mod:`lowdim.checkpoints`)."""
    return {"name": type(schedule).__name__, **asdict(schedule)}


class PreconditionedDenoiser(nn.Module):
    """Base class: EDM preconditioning around ``self.network(x_in, c_noise)``, which maps a ``(B, *shape)`` input
    and ``(B,)`` noise conditioning to ``(B, *shape)``. Subclasses set ``dim``, ``shape`` and ``config``."""

    dim: int
    shape: tuple[int, ...]
    config: dict

    def __init__(self, schedule: Schedule, sigma_data: float) -> None:
        super().__init__()
        self.schedule = schedule
        self.sigma_data = check_positive(sigma_data, "sigma_data")

    def network(self, x_in: Tensor, c_noise: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``D(x, t)`` for ``x`` of shape ``(B, *shape)`` (any shape with ``dim`` features per item) and ``t`` a float or ``(B,)``."""
        # shapes and a float t are checked here, tensor values are not (reading them is a host sync on a GPU, at every
        # call of the network): the public entry points (sampling, training, Jacobians) check their inputs once
        x = check_batch(x, "x", self.dim, finite=False)
        t = check_time(t, x, values=not isinstance(t, torch.Tensor))
        item = x.reshape(x.shape[0], *self.shape)
        alpha = batch_view(self.schedule.alpha(t), item)
        sigma = batch_view(self.schedule.sigma(t), item).clamp_min(1e-5)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / (sigma**2 + sd2).sqrt()
        c_in = 1 / (sigma**2 + sd2).sqrt()
        c_noise = 0.25 * sigma.reshape(-1).log()
        x_tilde = item / alpha
        return (c_skip * x_tilde + c_out * self.network(c_in * x_tilde, c_noise)).reshape(x.shape)

    def num_parameters(self) -> int:
        """Number of trainable parameters :math:`|\\theta|`."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _fourier_buffer(n_freq: int) -> Tensor:
    # Fixed random frequencies (seed 0), so that two models differ only in their trained weights.
    return randn(n_freq, stream(0), torch.get_default_dtype(), "cpu") * 2 * math.pi


class MLPDenoiser(PreconditionedDenoiser):
    """Time-conditioned MLP denoiser ``D(x, t)`` for inputs ``(B, *shape)`` with ``prod(shape) == dim``.

    ``width`` and ``depth`` (hidden layers) set the capacity; the noise level enters through
    ``n_freq`` random Fourier features of :math:`c_\\text{noise}` concatenated to the input.
    """

    def __init__(
        self, dim: int, schedule: Schedule, width: int = 128, depth: int = 3, sigma_data: float = 0.5, n_freq: int = 16
    ) -> None:
        super().__init__(schedule, sigma_data)
        self.dim = check_positive_int(dim, "dim")
        self.shape = (self.dim,)
        check_positive_int(width, "width")
        check_positive_int(depth, "depth")
        check_positive_int(n_freq, "n_freq")
        self.config = {
            "dim": dim, "width": width, "depth": depth, "sigma_data": float(sigma_data), "n_freq": n_freq,
            "schedule": schedule_config(schedule),
        }  # fmt: skip
        self.register_buffer("freqs", _fourier_buffer(n_freq))
        layers: list[nn.Module] = []
        fan_in = dim + 2 * n_freq
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.SiLU()]
            fan_in = width
        layers.append(nn.Linear(fan_in, dim))
        self.net = nn.Sequential(*layers)

    def network(self, x_in: Tensor, c_noise: Tensor) -> Tensor:
        angles = c_noise[:, None] * self.freqs.to(x_in)
        return self.net(torch.cat([x_in, angles.cos(), angles.sin()], dim=1))


class _ResBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, plus a per-channel shift from the noise embedding, twice; 1×1 skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(math.gcd(8, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(math.gcd(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class UNetDenoiser(PreconditionedDenoiser):
    """Small time-conditioned U-Net denoiser ``D(x, t)`` for images ``(B, C, H, W)``.

    One residual block per resolution, ``len(channels)`` resolutions (average-pool down, nearest-neighbour up,
    skip connections by concatenation), one block in the middle; the noise level enters every block through an
    MLP on ``n_freq`` random Fourier features of :math:`c_\\text{noise}`. ``H`` and ``W`` must be divisible by
    ``2 ** (len(channels) - 1)``. ``channels`` sets the capacity.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        schedule: Schedule,
        channels: tuple[int, ...] = (32, 64),
        sigma_data: float = 0.5,
        n_freq: int = 16,
    ) -> None:
        super().__init__(schedule, sigma_data)
        if len(shape) != 3 or any(not isinstance(s, int) or s < 1 for s in shape):
            raise ValueError(f"shape must be (C, H, W) with positive ints, got {shape}")
        channels = tuple(check_positive_int(c, "channels") for c in channels)
        if not channels:
            raise ValueError("channels must name at least one resolution")
        factor = 2 ** (len(channels) - 1)
        if shape[1] % factor or shape[2] % factor:
            raise ValueError(
                f"shape's H and W must be divisible by {factor} for {len(channels)} resolutions, got {shape}"
            )
        check_positive_int(n_freq, "n_freq")
        self.shape = tuple(shape)
        self.dim = math.prod(shape)
        self.config = {
            "shape": list(shape), "channels": list(channels), "sigma_data": float(sigma_data), "n_freq": n_freq,
            "schedule": schedule_config(schedule),
        }  # fmt: skip
        self.register_buffer("freqs", _fourier_buffer(n_freq))
        emb_dim = 4 * channels[0]
        self.embed = nn.Sequential(nn.Linear(2 * n_freq, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(shape[0], channels[0], 3, padding=1)
        self.down = nn.ModuleList(_ResBlock(channels[max(i - 1, 0)], c, emb_dim) for i, c in enumerate(channels))
        self.mid = _ResBlock(channels[-1], channels[-1], emb_dim)
        self.up = nn.ModuleList(
            _ResBlock(channels[min(i + 1, len(channels) - 1)] + c, c, emb_dim) for i, c in enumerate(channels)
        )
        self.norm_out = nn.GroupNorm(math.gcd(8, channels[0]), channels[0])
        self.conv_out = nn.Conv2d(channels[0], shape[0], 3, padding=1)

    def network(self, x_in: Tensor, c_noise: Tensor) -> Tensor:
        angles = c_noise[:, None] * self.freqs.to(x_in)
        emb = self.embed(torch.cat([angles.cos(), angles.sin()], dim=1))
        h = self.conv_in(x_in)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h, emb)
        for i in reversed(range(len(self.up))):
            h = self.up[i](torch.cat([h, skips[i]], dim=1), emb)
            if i > 0:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
        return self.conv_out(F.silu(self.norm_out(h)))


ARCHITECTURES = ("mlp", "unet")


def build_denoiser(arch: str, shape: tuple[int, ...], schedule: Schedule, **capacity) -> PreconditionedDenoiser:
    """A fresh ``"mlp"`` (:class:`MLPDenoiser`, ``width``/``depth``) or ``"unet"`` (:class:`UNetDenoiser`,
    ``channels``) denoiser for items of ``shape``, initialized from torch's global generator."""
    check_choice(arch, "arch", ARCHITECTURES)
    if arch == "mlp":
        return MLPDenoiser(math.prod(shape), schedule, **capacity)
    return UNetDenoiser(tuple(shape), schedule, **capacity)
