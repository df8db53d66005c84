r"""Tree-Ring-style watermarks in the Fourier domain of a noisy image, the building blocks of Shallow Diffuse.

A watermark is a **key**: fixed complex values :math:`k` on a disc (or annulus) :math:`M` of the 2-D discrete Fourier
transform of one channel. **Injection** replaces those coefficients of a state :math:`x_{t^\ast}` by the key,

.. math:: \mathcal F(x^w)_M = k_M, \qquad \mathcal F(x^w)_{M^c} = \mathcal F(x)_{M^c}, \qquad
          x^w = \operatorname{Re}\,\mathcal F^{-1}\big(\mathcal F(x^w)\big),

on the chosen channel (the real part makes the image real again). **Detection** inverts an image back to
:math:`t^\ast` and scores how close its coefficients on :math:`M` are to the key,
:math:`-\operatorname{mean}_M |\mathcal F(x)_M - k_M|`: higher means "watermarked".

The band places the disc: ``"low"`` at the centre of the shifted spectrum (``fftshift``: the lowest frequencies,
Tree-Ring's choice), ``"high"`` at the centre of the unshifted spectrum (the highest frequencies, the released
Shallow Diffuse code's choice). The key's values are constant on rings (rotation-invariant), read off the transform
of a Gaussian draw as in both codes: ring :math:`i` (the frequencies at distance within 0.5 of :math:`i` from the
disc's centre) takes the real part of the coefficient at row 0, column :math:`i`. The disc is symmetric under :math:`f \mapsto -f` and the values on it are real and symmetric, so the key
is the spectrum of a real image: injection sets :math:`\mathcal F(x^w)_M = k_M` exactly, where a complex key would
be halved into its Hermitian part by taking the real part.

The attacks a detector must survive work on images in [-1, 1] and return images in [-1, 1]:
:func:`jpeg` (Pillow's encoder), :func:`gaussian_blur` (scipy), :func:`gaussian_noise` and :func:`brightness`.
"""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from ._checks import check_batch, check_choice, check_generator, check_positive
from ._random import rand, randn

Tensor = torch.Tensor
BANDS = ("low", "high")


class WatermarkKey(NamedTuple):
    """:func:`watermark_key` result."""

    pattern: Tensor  # (S, S) complex: the key's Fourier coefficients (only those on `mask` are used)
    mask: Tensor  # (S, S) bool: the disc or annulus M, in the band's (shifted or unshifted) layout
    channel: int
    band: str


def disc(size: int, radius: float, inner: float = 0.0) -> Tensor:
    """Boolean ``(size, size)``: pixels at distance in ``(inner, radius]`` from ``(size // 2, size // 2)`` (a disc
    for ``inner = 0``, which keeps the centre)."""
    grid = torch.arange(size, dtype=torch.float64) - size // 2
    r2 = grid[:, None] ** 2 + grid[None, :] ** 2
    keep = r2 <= radius**2
    return keep & (r2 > inner**2) if inner > 0 else keep


def spectrum(x: Tensor, band: str) -> Tensor:
    """2-D DFT over the last two axes, ``fftshift``-ed for the ``"low"`` band (module docstring)."""
    F = torch.fft.fft2(x)
    return torch.fft.fftshift(F, dim=(-2, -1)) if band == "low" else F


def from_spectrum(F: Tensor, band: str) -> Tensor:
    """The real part of the inverse of :func:`spectrum`."""
    if band == "low":
        F = torch.fft.ifftshift(F, dim=(-2, -1))
    return torch.fft.ifft2(F).real


def watermark_key(
    size: int = 32,
    radius: float = 4.0,
    band: str = "high",
    channel: int = 0,
    inner: float = 0.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> WatermarkKey:
    """A ring key on the disc (``inner = 0``) or annulus ``(inner, radius]`` of ``band`` (``"low"`` or ``"high"``)
    for channel ``channel`` of ``size`` × ``size`` images, from one Gaussian draw of ``generator``: same generator
    state, same key."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise ValueError(f"size must be an int >= 4, got {size!r}")
    check_positive(radius, "radius")
    if not 0 <= inner < radius:
        raise ValueError(f"inner must lie in [0, radius) = [0, {radius}), got {inner!r}")
    if radius >= size // 2:
        raise ValueError(f"radius must be below size // 2 = {size // 2}, got {radius!r}")
    check_choice(band, "band", BANDS)
    if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
        raise ValueError(f"channel must be a non-negative int, got {channel!r}")
    draw = spectrum(randn((size, size), check_generator(generator), dtype or torch.get_default_dtype(), "cpu"), band)
    grid = torch.arange(size, dtype=torch.float64) - size // 2
    ring = (grid[:, None] ** 2 + grid[None, :] ** 2).sqrt().round().long()  # ring i: distance within 0.5 of i
    mask = disc(size, radius, inner)
    pattern = torch.zeros_like(draw)
    pattern[mask] = draw[0, ring[mask]].real.to(draw.dtype)
    return WatermarkKey(pattern, mask, channel, band)


def _check_images(x: Tensor, key: WatermarkKey) -> Tensor:
    x = check_batch(x, "x")
    if x.dim() != 4 or x.shape[-2:] != key.mask.shape or key.channel >= x.shape[1]:
        raise ValueError(
            f"x must have shape (B, C, {key.mask.shape[0]}, {key.mask.shape[1]}) with C > {key.channel} (the key's "
            f"channel), got {tuple(x.shape)}"
        )
    return x


def inject_watermark(x: Tensor, key: WatermarkKey, null_space: Tensor | None = None) -> Tensor:
    r"""Replace the key's coefficients in the spectrum of channel ``key.channel`` of ``x`` ``(B, C, S, S)`` (module
    docstring); the other channels are returned unchanged.

    With ``null_space`` ``(B, d, k)`` (orthonormal columns, ``d = C S S``; the top right singular vectors of the
    denoiser's Jacobian at ``x``, :func:`~lowdim.jacobian.jacobian_svd`), the change :math:`\Delta x` is projected
    off them first, :math:`x + (I - VV^	op)\Delta x`: to first order the denoiser's estimate then moves by at most
    :math:`\sigma_{k+1}\|\Delta x\|` (the null-space variant; the key is then no longer set exactly)."""
    x = _check_images(x, key)
    F = spectrum(x[:, key.channel], key.band)
    mask = key.mask.to(x.device)
    F[:, mask] = key.pattern.to(device=x.device, dtype=F.dtype)[mask]
    out = x.clone()
    out[:, key.channel] = from_spectrum(F, key.band).to(x.dtype)
    if null_space is None:
        return out
    d = x[0].numel()
    if not isinstance(null_space, torch.Tensor) or null_space.dim() != 3 or null_space.shape[:2] != (x.shape[0], d):
        shape = tuple(null_space.shape) if isinstance(null_space, torch.Tensor) else type(null_space).__name__
        raise ValueError(f"null_space must have shape ({x.shape[0]}, {d}, k), got {shape}")
    delta = (out - x).reshape(x.shape[0], d, 1)
    V = null_space.to(dtype=x.dtype, device=x.device)
    return x + (delta - V @ (V.transpose(1, 2) @ delta)).reshape(x.shape)


def watermark_score(x: Tensor, key: WatermarkKey) -> Tensor:
    r"""Detection score ``(B,)`` of states ``x`` ``(B, C, S, S)`` (inverted images):
    :math:`-\operatorname{mean}_M|\mathcal F(x)_M - k_M|` on channel ``key.channel``; higher is more likely marked."""
    x = _check_images(x, key)
    F = spectrum(x[:, key.channel], key.band)
    mask = key.mask.to(x.device)
    return -(F[:, mask] - key.pattern.to(device=x.device, dtype=F.dtype)[mask]).abs().mean(-1)


# ------------------------------------------------------------------------------------------------------- attacks


def _to_unit(x: Tensor) -> np.ndarray:
    return ((x.detach().double().cpu().numpy() + 1) / 2).clip(0, 1)


def _from_unit(u: np.ndarray, like: Tensor) -> Tensor:
    return torch.as_tensor(2 * u - 1, dtype=like.dtype, device=like.device)


def jpeg(x: Tensor, quality: int = 25) -> Tensor:
    """JPEG round trip of RGB images ``x`` ``(B, 3, H, W)`` in [-1, 1] with Pillow's encoder at ``quality``
    (1-95): quantized to 8 bits, encoded, decoded."""
    x = check_batch(x, "x")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must have shape (B, 3, H, W), got {tuple(x.shape)}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an int in [1, 95], got {quality!r}")
    out = []
    for image in (_to_unit(x) * 255).round().astype(np.uint8).transpose(0, 2, 3, 1):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")))
    return _from_unit(np.stack(out).transpose(0, 3, 1, 2) / 255.0, x)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of images ``x`` ``(B, C, H, W)`` with standard deviation ``sigma`` pixels in both spatial axes
    (scipy's ``gaussian_filter``, reflected edges, truncated at 4 sigma); channels are blurred separately."""
    x = check_batch(x, "x")
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    sigma = check_positive(sigma, "sigma")
    blurred = ndimage.gaussian_filter(x.detach().double().cpu().numpy(), sigma=(0, 0, sigma, sigma), mode="reflect")
    return torch.as_tensor(blurred, dtype=x.dtype, device=x.device)


def gaussian_noise(x: Tensor, sigma: float = 0.1, generator: torch.Generator | None = None) -> Tensor:
    """Add Gaussian noise of standard deviation ``sigma`` in [0, 1] units (``2 sigma`` in the [-1, 1] units of ``x``)
    and clip to [-1, 1]: floats throughout, no 8-bit wrap-around."""
    x = check_batch(x, "x")
    sigma = check_positive(sigma, "sigma")
    noise = randn(x.shape, check_generator(generator), x.dtype, x.device)
    return (x + 2 * sigma * noise).clamp(-1, 1)


def brightness(x: Tensor, factor: float | Tensor | None = None, high: float = 7.0,
               generator: torch.Generator | None = None) -> Tensor:  # fmt: skip
    """Colour jitter in brightness: each image's [0, 1] values times ``factor`` (a number or ``(B,)``; by default
    drawn uniformly from [0, ``high``], as torchvision's ``ColorJitter(brightness=high - 1)``), clipped to [0, 1]."""
    x = check_batch(x, "x")
    if factor is None:
        check_positive(high, "high")
        factor = high * rand((x.shape[0],), check_generator(generator), x.dtype, x.device)
    factor = torch.as_tensor(factor, dtype=x.dtype, device=x.device)
    if factor.dim() > 1 or (factor.dim() == 1 and factor.shape[0] != x.shape[0]) or bool((factor < 0).any()):
        raise ValueError(f"factor must be a non-negative number or have shape ({x.shape[0]},)")
    scale = factor.reshape(-1, *([1] * (x.dim() - 1))) if factor.dim() == 1 else factor
    return (((x + 1) / 2 * scale).clamp(0, 1)) * 2 - 1
