"""Chapter 11's study (lowdim.experiments.shallow_diffuse): the server scenario end to end on a denoiser whose answers
are known in closed form, the ROC read-outs against hand counts, the factor-distribution check, and bad arguments."""

import dataclasses

import numpy as np
import pytest
import torch

import lowdim as ld
from lowdim.experiments.shallow_diffuse import (
    ATTACKS,
    Cell,
    KeySpec,
    WatermarkStudy,
    apply_attack,
    below,
    clean_branch,
    marked_twin,
    merge,
    shared_grid,
    watermark_study,
)
from lowdim.watermark import inject_watermark, watermark_key

from .conftest import gen

SIDE = 8


class GaussianImages:
    """The exact denoiser of N(0, I) data on (3, SIDE, SIDE) images (a MoLRG with r = d), as a model with a
    schedule: D(x, t) = alpha x / (alpha^2 + beta^2), so J = alpha / (alpha^2 + beta^2) I."""

    def __init__(self):
        d = 3 * SIDE * SIDE
        self.schedule = ld.VP()
        self.law = ld.random_molrg(d, 1, d, generator=gen(0)).denoiser(self.schedule)

    def __call__(self, x, t):
        return self.law(x.reshape(x.shape[0], -1), t).reshape(x.shape)


def test_server_scenario_end_to_end_on_the_exact_gaussian_denoiser():
    model = GaussianImages()
    noise = ld.sample_prior(model.schedule, (12, 3, SIDE, SIDE), generator=gen(1), dtype=torch.float64)
    cells = [Cell(0.5, KeySpec("high", 1.5)), Cell(1.0, KeySpec("low", 1.5))]
    study = watermark_study(model, noise, cells, steps=100, attacks=("clean", "blur1"), fit_factors=False)
    assert study.marked.shape == (2, 2, 12) and study.psnr.shape == (2, 12)
    # the first-order leak is the Jacobian's scale alpha / (alpha^2 + beta^2) for every change
    for c, t in enumerate((0.5, 1.0)):
        t = torch.tensor(t, dtype=torch.float64)
        alpha, beta = model.schedule.alpha(t), model.schedule.beta(t)
        np.testing.assert_allclose(study.leak[c], float(alpha / (alpha**2 + beta**2)), rtol=1e-6)
    # inversion is exact up to DDIM's error: the clean reading separates perfectly
    assert study.auc(0) == study.auc(1) == 1.0 and study.tpr_at(0) == 1.0
    assert np.isfinite(study.psnr).all() and (study.ssim <= 1).all()
    torch.testing.assert_close(torch.as_tensor(study.t), torch.tensor([0.5, 1.0], dtype=torch.float64))


def test_channel_averaging_keeps_the_other_channels_of_the_clean_twin():
    # below t* = 1 only the key's channel comes from the marked branch; at t* = 1 (Tree-Ring) the whole image does
    model = GaussianImages()
    noise = ld.sample_prior(model.schedule, (4, 3, SIDE, SIDE), generator=gen(2), dtype=torch.float64)
    grid = shared_grid(model.schedule, 20, [0.3])
    key = watermark_key(SIDE, 2.0, "low", channel=1, generator=gen(3), dtype=torch.float64)
    clean, states = clean_branch(model, noise, grid, [0.3])
    image, delta = marked_twin(model, states[0.3], key, clean, below(grid, 0.3))
    torch.testing.assert_close(image[:, [0, 2]], clean[:, [0, 2]], rtol=0, atol=0)
    assert float((image[:, 1] - clean[:, 1]).abs().max()) > 0.01
    torch.testing.assert_close(delta, inject_watermark(states[0.3], key) - states[0.3])
    tree_ring, _ = marked_twin(model, noise, key, clean, grid)
    whole = ld.sample(model, inject_watermark(noise, key), model.schedule, method="ddim", t_grid=grid).clamp(-1, 1)
    torch.testing.assert_close(tree_ring, whole, rtol=0, atol=0)


def test_the_expected_leak_of_an_isotropic_change_is_the_frobenius_norm_over_d():
    # Proposition (chapter 11): E||J z||^2 = ||J||_F^2 / d for z uniform on the unit sphere; the closed-form MoLRG
    # Jacobian at a noisy point against a Monte Carlo average over 20,000 random unit directions
    d, vp, t = 24, ld.VP(), 0.4
    law = ld.random_molrg(d, 2, 3, generator=gen(5))
    x0, _ = law.sample(1, generator=gen(6))
    x_t = ld.perturb(x0, t, vp, generator=gen(7))[0]
    J = ld.jacobian(law.denoiser(vp), x_t, t)[0]
    z = torch.randn(20000, d, generator=gen(8), dtype=torch.float64)
    z = z / z.norm(dim=1, keepdim=True)
    monte_carlo = float((z @ J.T).pow(2).sum(1).mean())
    assert monte_carlo == pytest.approx(float(J.pow(2).sum()) / d, rel=0.03)
    # and a rank-r projection leaks r / d
    U = torch.linalg.qr(torch.randn(d, 6, generator=gen(9), dtype=torch.float64))[0]
    assert float((z @ U).pow(2).sum(1).mean()) == pytest.approx(6 / d, rel=0.03)


def test_the_shared_grid_holds_every_injection_time_and_the_sampler_grid():
    vp = ld.VP()
    grid = shared_grid(vp, 25, [0.1, 0.3, 1.0])
    base = ld.time_grid(vp, 25)
    assert bool((grid[1:] < grid[:-1]).all()) and float(grid[0]) == 1.0 and float(grid[-1]) == 0.0
    assert all(bool((grid == t).any()) for t in (0.1, 0.3)) and len(grid) == len(base) + 2
    assert bool(torch.isin(base, grid).all())


def _study(marked, clean, factors=None, reference=None):
    C, A, N = marked.shape
    factors = np.zeros((C, N, 14)) if factors is None else factors
    return WatermarkStudy(
        t=np.full(C, 0.3), band=["high"] * C, radius=np.full(C, 4.0), inner=np.zeros(C), null_space=np.zeros(C, bool),
        attacks=list(ATTACKS[:A]), marked=marked, clean=clean, psnr=np.zeros((C, N)), ssim=np.zeros((C, N)),
        leak=np.zeros((C, N)), change=np.zeros((C, N)), factors=factors, clean_factors=np.zeros((N, 14)),
        reference_factors=np.zeros((N, 14)) if reference is None else reference, steps=25, null_rank=20, channel=0,
        key_seed=0, seconds=1.0,
    )  # fmt: skip


def test_auc_and_tpr_at_one_percent_fpr_match_hand_counts():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=200)
    marked = np.r_[np.sort(clean)[-3:] + 1e-9, rng.normal(5, 1, 197)]  # 3 marked just above the clean's top 3
    study = _study(marked[None, None], clean[None, None])
    pairs = (marked[:, None] > clean[None, :]).mean()  # AUC = P(marked score > clean score)
    assert study.auc(0) == pytest.approx(pairs, abs=1e-12)
    third = np.sort(clean)[-3]  # at 1 % FPR two of the 200 clean scores may reach the threshold, not three
    assert study.tpr_at(0, fpr=0.01) == pytest.approx((marked > third).mean(), abs=1e-12)
    assert study.tpr_at(0, fpr=0.0) == pytest.approx((marked > clean.max()).mean(), abs=1e-12)


def test_the_factor_distance_is_the_largest_kolmogorov_smirnov_statistic():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(300, 14))
    same = reference.copy()
    shifted = reference.copy()
    shifted[:, 5] += 100.0  # one factor moved far: KS statistic 1 for it
    study = _study(np.zeros((2, 1, 300)), np.zeros((2, 1, 300)), np.stack([same, shifted]), reference)
    assert study.factor_distance(0) == 0.0 and study.factor_distance(1) == 1.0
    # the clean twins' factors: here all zero against a standard normal reference, so the KS statistic is 1/2
    assert study.factor_distance() == pytest.approx(0.5, abs=0.1)


def test_merge_joins_images_and_refuses_different_cells():
    a = _study(np.zeros((1, 2, 5)), np.ones((1, 2, 5)))
    b = _study(np.ones((1, 2, 3)), np.zeros((1, 2, 3)))
    joined = merge([a, b])
    assert joined.marked.shape == (1, 2, 8) and joined.factors.shape == (1, 8, 14) and joined.seconds == 2.0
    assert joined.auc(0) == pytest.approx(3 / 8)
    with pytest.raises(ValueError, match="same cells"):
        merge([a, dataclasses.replace(b, t=np.full(1, 0.5))])


def test_attacks_use_their_seeds_and_the_study_rejects_bad_arguments():
    x, _ = ld.scenes(2, generator=gen(4), dtype=torch.float64)
    for name in ATTACKS:
        torch.testing.assert_close(apply_attack(name, x, 7), apply_attack(name, x, 7))
    assert not torch.equal(apply_attack("noise0.1", x, 7), apply_attack("noise0.1", x, 8))
    with pytest.raises(ValueError, match="name must be one of"):
        apply_attack("rotate", x, 0)
    model = GaussianImages()
    noise = torch.zeros(2, 3, SIDE, SIDE, dtype=torch.float64)
    with pytest.raises(ValueError, match="cells"):
        watermark_study(model, noise, [])
    with pytest.raises(ValueError, match="t in"):
        watermark_study(model, noise, [Cell(1.5, KeySpec("low", 2.0))])
    with pytest.raises(ValueError, match="attacks"):
        watermark_study(model, noise, [Cell(0.5, KeySpec("low", 2.0))], attacks=("rotate",))
    with pytest.raises(ValueError, match="noise must have shape"):
        watermark_study(model, noise[:, 0], [Cell(0.5, KeySpec("low", 2.0))])
