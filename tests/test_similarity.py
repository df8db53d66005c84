"""RP and GL scores and the random-Fourier copy-detection embedding."""

import math

import pytest
import torch

import lowdim as ld
from lowdim.similarity import RandomFourierEmbedding, gl_score, max_similarity, pair_similarity, rp_score

from .conftest import gen


def test_fourier_embedding_cosine_is_the_gaussian_kernel():
    # cos(phi(x), phi(y)) -> exp(-RMS(x - y)^2 / (2 tau^2)); with 8192 features the error is O(1/90)
    d, tau = 64, 0.1
    embed = RandomFourierEmbedding(d, rms=tau, generator=gen(0))
    x = torch.rand(200, d, generator=gen(0)) * 2 - 1
    rms = torch.linspace(0, 0.3, 200)
    direction = torch.nn.functional.normalize(torch.randn(200, d, generator=gen(1)), dim=1)
    y = x + rms[:, None] * math.sqrt(d) * direction
    got = pair_similarity(x, y, embed)
    exact = torch.exp(-(rms**2) / (2 * tau**2))
    assert (got - exact).abs().max() < 0.04
    assert (got - exact).abs().mean() < 0.012


def test_scores_call_a_copy_where_the_gaussian_kernel_exceeds_0_6():
    # the scores' decision against the exact kernel exp(-RMS^2 / 2 tau^2) > 0.6 (i.e. RMS < 1.0107 tau), not the
    # embedding: 100 pairs at RMS < 0.9 tau (kernel > 0.667) and 200 at RMS in (1.1, 2.1) tau (kernel < 0.546), so
    # the features' error (< 0.03 per pair with 8192 of them) cannot flip a decision. Training points lie ~8 tau apart.
    d, tau = 64, 0.1
    embed = RandomFourierEmbedding(d, rms=tau, generator=gen(0))
    x = torch.rand(300, d, generator=gen(2)) * 2 - 1
    rms = tau * torch.cat([0.9 * torch.rand(100, generator=gen(3)), 1.1 + torch.rand(200, generator=gen(4))])
    direction = torch.nn.functional.normalize(torch.randn(300, d, generator=gen(5)), dim=1)
    y = x + rms[:, None] * math.sqrt(d) * direction
    copies = torch.exp(-(rms**2) / (2 * tau**2)) > 0.6
    assert int(copies.sum()) == 100
    assert rp_score(x, y, embed=embed) == 1 / 3
    assert gl_score(y, x, embed=embed) == 2 / 3
    best, idx = max_similarity(y, x, embed)
    assert torch.equal(best > 0.6, copies) and torch.equal(idx[copies], torch.arange(100))


@pytest.mark.parametrize("embed", [None, RandomFourierEmbedding(3 * 8 * 8, rms=0.1, generator=gen(0))])
def test_rp_is_one_for_identical_and_zero_for_independent_noise(embed):
    x = torch.randn(500, 3, 8, 8, generator=gen(0))
    assert rp_score(x, x.clone(), embed=embed) == 1.0
    assert rp_score(x, torch.randn(500, 3, 8, 8, generator=gen(1)), embed=embed) <= 0.01


def test_max_similarity_matches_brute_force():
    a, b = torch.randn(30, 5, generator=gen(0)), torch.randn(70, 5, generator=gen(1))
    best, idx = max_similarity(a, b, chunk_size=7)
    brute = torch.stack([torch.stack([torch.nn.functional.cosine_similarity(u, v, dim=0) for v in b]) for u in a])
    assert torch.allclose(best, brute.max(1).values, atol=1e-12)
    assert torch.equal(idx, brute.argmax(1))


def _teacher():
    # d = 96, two orthogonal 24-dimensional subspaces: fresh samples have cosine ~ N(0, 1/24) with any other point
    return ld.random_molrg(96, 2, 24, generator=gen(5))


def test_gl_of_the_empirical_denoisers_samples_is_near_zero():
    teacher, schedule = _teacher(), ld.VP()
    train, _ = teacher.sample(20, generator=gen(6))
    x_T = ld.sample_prior(schedule, (200, 96), generator=gen(7))
    samples = ld.sample(ld.EmpiricalDenoiser(train).denoiser(schedule), x_T, schedule, steps=40)
    assert gl_score(samples, train) <= 0.05
    assert gl_score(samples, train, embed=RandomFourierEmbedding(96, rms=0.1, generator=gen(0))) <= 0.05


def test_gl_of_the_teachers_own_samples_is_near_one():
    teacher, schedule = _teacher(), ld.VP()
    train, _ = teacher.sample(20, generator=gen(6))
    x_T = ld.sample_prior(schedule, (200, 96), generator=gen(7))
    samples = ld.sample(teacher.denoiser(schedule), x_T, schedule, steps=40)
    assert gl_score(samples, train) >= 0.95
    assert gl_score(samples, train, embed=RandomFourierEmbedding(96, rms=0.1, generator=gen(0))) >= 0.95


def test_scores_validate_their_inputs():
    x = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="^threshold"):
        rp_score(x, x, threshold=1.5)
    with pytest.raises(ValueError, match="^x1 and x2"):
        rp_score(x, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="^samples and train"):
        gl_score(x, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="^x"):
        RandomFourierEmbedding(5)(x)
    with pytest.raises(ValueError, match="^rms"):
        RandomFourierEmbedding(4, rms=0.0, generator=gen(0))


def test_reproducibility_sweep_regimes_and_round_trip(tmp_path):
    import numpy as np

    from lowdim.experiments.reproducibility import ReproducibilitySweep

    gl = np.array([[0.0, 0.2, 0.5, 0.8], [0.1, 0.21, 0.79, 1.0]])
    sweep = ReproducibilitySweep(["a", "b"], [10, 20], [1, 2, 4, 8], np.ones((2, 4)), gl, np.zeros((2, 4, 2)),
                                 np.zeros((2, 4, 3, 1, 2, 2), np.float32))  # fmt: skip
    np.testing.assert_array_equal(sweep.regimes(), [["M", "M", "T", "G"], ["M", "T", "T", "G"]])
    sweep.rp = np.array([[0.9, 0.4, 0.4, 0.4], [0.5, 0.5, 0.5, 0.49]])  # GL's labels, then RP's verdict on each
    np.testing.assert_array_equal(sweep.joint_regimes(), [["M", "T", "T", "U"], ["M", "T", "T", "U"]])
    sweep.rp = np.ones((2, 4))
    sweep.save(tmp_path / "s.npz")
    back = ReproducibilitySweep.load(tmp_path / "s.npz")
    assert back.capacities == ["a", "b"] and back.sample_sizes == [1, 2, 4, 8]
    np.testing.assert_array_equal(back.gl, gl)


def test_seed_spread_is_the_mean_and_sample_deviation_over_seed_pairs():
    import numpy as np
    import pytest

    from lowdim.experiments.reproducibility import ReproducibilitySweep, seed_spread

    def sweep(rp, gl, sizes=(1, 2)):
        return ReproducibilitySweep(["a"], [10], list(sizes), np.array([rp]), np.array([gl]), np.zeros((1, 2, 2)),
                                    np.zeros((1, 2, 1, 1, 2, 2), np.float32))  # fmt: skip

    sweeps = [sweep([0.2, 1.0], [0.0, 0.5]), sweep([0.4, 1.0], [0.3, 0.5]), sweep([0.9, 1.0], [0.6, 0.5])]
    spread = seed_spread(sweeps)
    np.testing.assert_allclose(spread["rp_mean"], [[0.5, 1.0]])
    np.testing.assert_allclose(spread["gl_mean"], [[0.3, 0.5]])
    # by hand: deviations (-0.3, -0.1, 0.4) -> sum of squares 0.26 over n - 1 = 2
    np.testing.assert_allclose(spread["rp_std"], [[np.sqrt(0.13), 0.0]], atol=1e-12)
    np.testing.assert_allclose(spread["gl_std"], [[0.3, 0.0]], atol=1e-12)
    with pytest.raises(ValueError, match="at least two"):
        seed_spread(sweeps[:1])
    with pytest.raises(ValueError, match="share"):
        seed_spread([sweeps[0], sweep([0.2, 1.0], [0.0, 0.5], sizes=(1, 4))])
