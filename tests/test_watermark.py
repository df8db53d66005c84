"""Shallow Diffuse's building blocks: the ring key, injection in one channel's spectrum, the detection score, and the
attacks, each against an independent reference."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lowdim as ld
from lowdim.watermark import (
    brightness,
    disc,
    gaussian_blur,
    gaussian_noise,
    inject_watermark,
    jpeg,
    spectrum,
    watermark_key,
    watermark_score,
)

from .conftest import gen


def test_the_key_is_reproducible_from_its_seed_and_constant_on_rings():
    a, b = watermark_key(32, 5, "low", generator=gen(0)), watermark_key(32, 5, "low", generator=gen(0))
    torch.testing.assert_close(a.pattern, b.pattern)
    assert not torch.equal(a.pattern, watermark_key(32, 5, "low", generator=gen(1)).pattern)
    assert int(a.mask.sum()) == int(disc(32, 5).sum()) == 81  # lattice points within distance 5
    ring = disc(32, 2.49) & ~disc(32, 1.5)  # the frequencies at distance 1.5 to 2.5 from the centre: ring 2
    assert a.pattern.real[ring].unique().numel() == 1 and a.pattern.imag.abs().max() == 0
    assert bool((a.pattern[a.mask] != 0).all()) and bool((a.pattern[~a.mask] == 0).all())
    annulus = watermark_key(32, 5, "high", inner=2.5, generator=gen(0))
    assert not bool(annulus.mask[16, 16]) and bool(annulus.mask[16, 21])


@pytest.mark.parametrize("band", ["low", "high"])
def test_injection_sets_exactly_the_masked_coefficients_of_one_channel(band):
    x = torch.randn(3, 3, 16, 16, generator=gen(2), dtype=torch.float64)
    key = watermark_key(16, 3, band, channel=1, generator=gen(3), dtype=torch.float64)
    y = inject_watermark(x, key)
    torch.testing.assert_close(y[:, [0, 2]], x[:, [0, 2]], rtol=0, atol=0)
    Fx, Fy = spectrum(x[:, 1], band), spectrum(y[:, 1], band)
    torch.testing.assert_close(Fy[:, key.mask], key.pattern[key.mask].expand(3, -1), rtol=0, atol=1e-10)
    torch.testing.assert_close(Fy[:, ~key.mask], Fx[:, ~key.mask], rtol=0, atol=1e-10)
    # the low band's disc holds the mean (frequency 0); the high band's holds the highest frequency
    mean_change = (y[:, 1].mean((1, 2)) - x[:, 1].mean((1, 2))).abs().max()
    assert (float(mean_change) > 1e-6) == (band == "low")


def test_where_inversion_is_exact_detection_separates_marked_from_clean_twins():
    # a MoLRG whose subspace is the whole space (r = d: Gaussian data): the exact denoiser is linear and the flow
    # map a bijection, so sampling from t* and inverting back returns the marked state and the key is read exactly
    side, vp, t_star, steps = 6, ld.VP(), 0.5, 200
    model = ld.random_molrg(3 * side * side, 1, 3 * side * side, generator=gen(12))
    D0 = model.denoiser(vp)

    def D(x, t):
        return D0(x.reshape(x.shape[0], -1), t).reshape(x.shape)

    x_T = ld.sample_prior(vp, (32, 3, side, side), generator=gen(13), dtype=torch.float64)
    x_t = ld.sample(D, x_T, vp, t_grid=torch.linspace(1, t_star, steps + 1, dtype=torch.float64), method="ddim")
    key = watermark_key(side, 1.5, "high", generator=gen(14), dtype=torch.float64)
    scores = []
    for state in (inject_watermark(x_t, key), x_t):
        image = ld.sample(D, state, vp, steps=steps, method="ddim", t_start=t_star)
        back = ld.invert(D, image, vp, t_star, steps)
        error = (back - state).flatten(1).norm(dim=1).max() / state.flatten(1).norm(dim=1).min()
        assert float(error) < 0.02  # DDIM's O(1/steps)
        scores.append(watermark_score(back, key))
    marked, clean = scores
    # the key's coefficients have magnitudes of about 3-10 here: the marked twins read it back to within 0.1, the
    # clean twins stay at least 3 away on average (AUC 1 with a wide gap)
    assert float(marked.min()) > -0.1 and float(clean.max()) < -3


def test_with_the_exact_molrg_denoiser_inversion_returns_only_the_marks_part_in_the_images_own_subspace():
    # user scenario: a MoLRG image inverted to t*, marked there, denoised back, inverted again. At t -> 0 the exact
    # denoiser projects onto the subspace the sample falls in, so the mark's part outside that subspace (the null
    # space of the Jacobian at small t) is erased by sampling and cannot come back; inversion returns the rest
    side, vp, t_star, steps = 6, ld.VP(), 0.5, 400
    model = ld.random_molrg(3 * side * side, 2, 8, generator=gen(4))
    D0 = model.denoiser(vp)

    def D(x, t):
        return D0(x.reshape(x.shape[0], -1), t).reshape(x.shape)

    x0, labels = model.sample(16, generator=gen(5))
    x0 = x0.reshape(16, 3, side, side)
    key = watermark_key(side, 1.5, "high", generator=gen(6), dtype=torch.float64)
    marked_t = inject_watermark(ld.invert(D, x0, vp, t_star, steps), key).reshape(16, -1)
    image = ld.sample(D, marked_t.reshape(x0.shape), vp, steps=steps, method="ddim", t_start=t_star)
    back = ld.invert(D, image, vp, t_star, steps).reshape(16, -1)
    U = torch.stack([model.bases[int(k)] for k in labels])  # (16, d, r): each image's own subspace
    own = (U @ (U.transpose(1, 2) @ marked_t[..., None]))[..., 0]
    assert float(((back - own).norm(dim=1) / own.norm(dim=1)).max()) < 0.05
    erased = (marked_t - own).norm(dim=1) / own.norm(dim=1)  # what the mark put outside the own subspace
    assert float(erased.min()) > 0.3


def test_the_null_space_variant_moves_the_exact_denoiser_not_at_all():
    # the MoLRG Jacobian at t* has rank K r: projecting the mark off its top K r right singular vectors leaves a
    # change the denoiser ignores exactly, where the plain mark moves its estimate
    side, vp, t_star = 6, ld.VP(), 0.3
    model = ld.random_molrg(3 * side * side, 2, 4, generator=gen(7))
    D0 = model.denoiser(vp)

    def D(x, t):
        return D0(x.reshape(x.shape[0], -1), t).reshape(x.shape)

    x_t = ld.perturb(model.sample(4, generator=gen(8))[0].reshape(4, 3, side, side), t_star, vp, generator=gen(9))[0]
    key = watermark_key(side, 2, "low", generator=gen(10), dtype=torch.float64)
    V = ld.jacobian_svd(D, x_t, t_star, 8, tol=1e-10, generator=gen(11)).V
    moves = []
    for variant in (None, V):
        marked = inject_watermark(x_t, key, null_space=variant)
        moves.append(
            (D(marked, t_star) - D(x_t, t_star)).flatten(1).norm(dim=1) / (marked - x_t).flatten(1).norm(dim=1)
        )
    assert float(moves[0].min()) > 0.05 and float(moves[1].max()) < 1e-8 * float(moves[0].min())
    with pytest.raises(ValueError, match="null_space"):
        inject_watermark(x_t, key, null_space=V[:, :10])


def test_jpeg_matches_a_direct_pillow_round_trip_and_loses_more_at_low_quality():
    x, _ = ld.scenes(2, generator=gen(7), dtype=torch.float64)
    out = jpeg(x, 25)
    image = Image.fromarray(np.round((x[1].numpy().transpose(1, 2, 0) + 1) / 2 * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=25)
    reference = np.asarray(Image.open(buffer)).transpose(2, 0, 1) / 255.0 * 2 - 1
    np.testing.assert_allclose(out[1].numpy(), reference, atol=1e-12)
    errors = [float((jpeg(x, q) - x).pow(2).mean()) for q in (25, 90)]
    assert errors[0] > 2 * errors[1] > 0


def test_blur_equals_a_direct_convolution_with_a_normalized_gaussian():
    x = torch.rand(2, 3, 12, 12, generator=gen(8), dtype=torch.float64) * 2 - 1
    sigma = 1.0
    radius = int(4 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = _symmetric_pad(x, radius)
    direct = F.conv2d(F.conv2d(padded, kernel.reshape(1, 1, 1, -1)), kernel.reshape(1, 1, -1, 1)).reshape(x.shape)
    torch.testing.assert_close(gaussian_blur(x, sigma), direct, rtol=1e-10, atol=1e-12)


def _symmetric_pad(x, radius):
    """Pad (B, C, H, W) by mirroring with the edge repeated (d c b a | a b c d | d c b a): scipy's "reflect"."""
    flat = x.reshape(-1, 1, *x.shape[-2:])
    for dim in (-1, -2):
        left = flat.narrow(dim, 0, radius).flip(dim)
        right = flat.narrow(dim, flat.shape[dim] - radius, radius).flip(dim)
        flat = torch.cat([left, flat, right], dim)
    return flat


def test_noise_and_brightness_are_what_they_say():
    x = torch.zeros(64, 3, 16, 16, dtype=torch.float64)  # mid-grey: no clipping at sigma = 0.1
    noisy = gaussian_noise(x, 0.1, generator=gen(9))
    assert abs(float((noisy - x).std()) - 0.2) < 0.005  # 0.1 in [0, 1] units is 0.2 in [-1, 1] units
    torch.testing.assert_close(noisy, gaussian_noise(x, 0.1, generator=gen(9)))
    images, _ = ld.scenes(4, generator=gen(10), dtype=torch.float64)
    torch.testing.assert_close(brightness(images, 1.0), images)
    assert bool((brightness(images, 0.0) == -1).all())
    doubled = brightness(images, torch.tensor([2.0, 2.0, 2.0, 2.0]))
    torch.testing.assert_close(doubled, ((images + 1) * 2).clamp(0, 2) - 1)
    factors = []
    for seed in range(200):
        one = brightness(torch.zeros(1, 1, 1, 1, dtype=torch.float64), generator=gen(seed))
        factors.append(float((one + 1) / 2 * 2))  # grey 0.5 times the factor, clipped at 1: the factor up to 2
    assert min(factors) < 0.2 and max(factors) == 2.0 and np.mean(np.array(factors) == 2.0) > 0.7  # U[0, 7] > 2


def test_watermark_functions_reject_bad_arguments():
    key = watermark_key(16, 3, generator=gen(0))
    with pytest.raises(ValueError, match="band"):
        watermark_key(16, 3, "middle")
    with pytest.raises(ValueError, match="radius"):
        watermark_key(16, 8)
    with pytest.raises(ValueError, match="inner"):
        watermark_key(16, 3, inner=3)
    with pytest.raises(ValueError, match="x must have shape"):
        inject_watermark(torch.zeros(2, 3, 8, 8), key)
    with pytest.raises(ValueError, match="x must have shape"):
        watermark_score(torch.zeros(2, 3, 16), key)
    with pytest.raises(ValueError, match="quality"):
        jpeg(torch.zeros(1, 3, 8, 8), 0)
    with pytest.raises(ValueError, match="x must have shape"):
        jpeg(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(torch.zeros(1, 3, 8, 8), -1.0)
    with pytest.raises(ValueError, match="factor"):
        brightness(torch.zeros(2, 3, 8, 8), torch.tensor([1.0, -1.0]))
