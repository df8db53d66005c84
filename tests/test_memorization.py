"""Memorization and generalization measures of generated samples."""

import pytest
import torch

import lowdim as ld
from lowdim.experiments.memorization import (
    memorization_sweep,
    memorized_fraction,
    nearest_training_distances,
    subspace_residual,
)
from tests.conftest import gen


def test_nearest_training_distances_match_brute_force():
    s, x = torch.randn(9, 5, generator=gen(0)), torch.randn(12, 5, generator=gen(1))
    first, second = nearest_training_distances(s, x)
    brute = torch.tensor([sorted((si - xj).norm().item() for xj in x)[:2] for si in s])
    torch.testing.assert_close(torch.stack([first, second], 1), brute)
    with pytest.raises(ValueError, match="^train must hold at least 2"):
        nearest_training_distances(s, x[:1])


def test_copies_are_memorized_and_fresh_samples_are_not():
    truth = ld.random_molrg(20, 2, 3, generator=gen(2))
    train = truth.sample(50, generator=gen(3))[0]
    copies = train[:30] + 1e-3 * torch.randn(30, 20, generator=gen(4))
    fresh = truth.sample(200, generator=gen(5))[0]
    assert memorized_fraction(copies, train) == 1.0
    assert memorized_fraction(fresh, train) < 0.05
    # Both lie on the subspaces; off-support points do not.
    assert subspace_residual(fresh, truth).max() < 1e-10
    assert subspace_residual(torch.randn(100, 20, generator=gen(6)), truth).median() > 0.8


def test_memorization_sweep_validates_its_pool():
    with pytest.raises(ValueError, match="^n_pool must be >="):
        memorization_sweep(8, 2, [1], [4, 8], steps=1, n_samples=2, n_pool=4)


def test_cosine_schedule_option_trains_and_is_validated():
    model = ld.MLPDenoiser(4, ld.VP(), width=8, depth=1)
    data = torch.randn(16, 4, generator=gen(7))
    before = [p.detach().clone() for p in model.parameters()]
    ld.train_denoiser(model, data, ld.VP(), steps=1, generator=gen(8), progress=False, lr_schedule="cosine")
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="^lr_schedule must be one of"):
        ld.train_denoiser(model, data, ld.VP(), steps=1, progress=False, lr_schedule="linear")
