r"""Small trainable denoisers with EDM preconditioning (Karras et al. 2022, Table 1).

In the scaled variables :math:`\tilde x = x/\alpha_t`, :math:`\sigma = \beta_t/\alpha_t` the network :math:`F_\theta` is wrapped as

.. math:: D_\theta(x, t) = c_\text{skip}(\sigma)\,\tilde x + c_\text{out}(\sigma)\,F_\theta\big(c_\text{in}(\sigma)\tilde x,\ c_\text{noise}(\sigma)\big),

:math:`c_\text{skip} = \sigma_d^2/(\sigma^2+\sigma_d^2)`, :math:`c_\text{out} = \sigma\sigma_d/\sqrt{\sigma^2+\sigma_d^2}`,
:math:`c_\text{in} = 1/\sqrt{\sigma^2+\sigma_d^2}`, :math:`c_\text{noise} = \tfrac14\log\sigma`, so that :math:`F_\theta`
sees and predicts unit-variance quantities at every noise level.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import batch_view, check_batch, check_positive, check_positive_int, check_time
from .schedules import Schedule

Tensor = torch.Tensor


class MLPDenoiser(nn.Module):
    """Time-conditioned MLP denoiser ``D(x, t)`` for inputs ``(B, *shape)`` with ``prod(shape) == dim``.

    ``width`` and ``depth`` (hidden layers) set the capacity; the noise level enters through
    ``n_freq`` random Fourier features of :math:`c_\\text{noise}` concatenated to the input.
    """

    def __init__(
        self, dim: int, schedule: Schedule, width: int = 128, depth: int = 3, sigma_data: float = 0.5, n_freq: int = 16
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        check_positive_int(width, "width")
        check_positive_int(depth, "depth")
        check_positive_int(n_freq, "n_freq")
        self.schedule = schedule
        self.sigma_data = check_positive(sigma_data, "sigma_data")
        self.register_buffer("freqs", torch.randn(n_freq, generator=torch.Generator().manual_seed(0)) * 2 * math.pi)
        layers: list[nn.Module] = []
        fan_in = dim + 2 * n_freq
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.SiLU()]
            fan_in = width
        layers.append(nn.Linear(fan_in, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: float | Tensor) -> Tensor:
        x = check_batch(x, "x", self.dim)
        t = check_time(t, x)
        flat = x.reshape(x.shape[0], self.dim)
        alpha = batch_view(self.schedule.alpha(t), flat)
        sigma = batch_view(self.schedule.sigma(t), flat).clamp_min(1e-5)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / (sigma**2 + sd2).sqrt()
        c_in = 1 / (sigma**2 + sd2).sqrt()
        c_noise = 0.25 * sigma.log()
        angles = c_noise * self.freqs.to(flat)
        x_tilde = flat / alpha
        features = torch.cat([c_in * x_tilde, angles.cos(), angles.sin()], dim=1)
        return (c_skip * x_tilde + c_out * self.net(features)).reshape(x.shape)
