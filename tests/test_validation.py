"""Bad input raises ValueError/TypeError whose message starts with the argument's name."""

import math
import re

import pytest
import torch

import lowdim as ld
from tests.conftest import gen

VP = ld.VP()


def molrg():
    return ld.random_molrg(6, 2, 2, generator=gen(0))


CASES = [
    # (callable, exception, argument named in the message)
    (lambda: ld.perturb(torch.zeros(4), 0.5, VP), ValueError, "x0"),
    (lambda: ld.perturb(torch.zeros(4, 2), 1.5, VP), ValueError, "t"),
    (lambda: ld.perturb(torch.zeros(4, 2), -0.1, VP), ValueError, "t"),
    (lambda: ld.perturb(torch.zeros(4, 2), torch.zeros(3), VP), ValueError, "t"),
    (lambda: ld.perturb(torch.full((4, 2), math.nan), 0.5, VP), ValueError, "x0"),
    (lambda: ld.perturb([[0.0]], 0.5, VP), TypeError, "x0"),
    (lambda: ld.perturb(torch.zeros(4, 2, dtype=torch.long), 0.5, VP), TypeError, "x0"),
    (lambda: ld.perturb(torch.zeros(4, 2), 0.5, VP, generator=0), TypeError, "generator"),
    (lambda: ld.simulate_forward_sde(torch.zeros(4, 2), VP, 0), ValueError, "steps"),
    (lambda: molrg().posterior_mean(torch.zeros(3, 5), 0.5, VP), ValueError, "x"),
    (lambda: molrg().posterior_mean(torch.zeros(3, 6), math.nan, VP), ValueError, "t"),
    (lambda: molrg().posterior_mean(torch.full((3, 6), math.inf), 0.5, VP), ValueError, "x"),
    (lambda: ld.MoLRG(torch.ones(1, 4, 2)), ValueError, "bases[0] must have orthonormal"),
    (lambda: ld.MoLRG([torch.ones(3, 4)]), ValueError, "bases[0] must have 1 <= r_k <= d"),
    (lambda: ld.MoLRG([torch.eye(3)[:, :2], torch.eye(4)[:, :2]]), ValueError, "bases[1]"),
    (lambda: ld.MoLRG(torch.zeros(4, 2)), ValueError, "bases"),
    (lambda: ld.MoLRG([torch.eye(3)[:, :2]], weights=[0.5, 0.5]), ValueError, "weights"),
    (lambda: ld.MoLRG([torch.eye(3)[:, :2], torch.eye(3)[:, 2:]], weights=[0.9, 0.9]), ValueError, "weights"),
    (lambda: ld.random_molrg(4, 1, 5), ValueError, "r"),
    (lambda: ld.random_molrg(6, 3, 3), ValueError, "r must satisfy sum(r)"),
    (lambda: ld.random_molrg(6, 0, 1), ValueError, "K"),
    (lambda: molrg().sample(0), ValueError, "n"),
    (lambda: ld.GaussianDenoiser(torch.zeros(3), torch.eye(2)), ValueError, "covariance"),
    (
        lambda: ld.GaussianDenoiser(torch.zeros(2), -torch.eye(2)),
        ValueError,
        "covariance must be positive semi-definite",
    ),
    (lambda: ld.GaussianDenoiser.fit(torch.zeros(1, 3)), ValueError, "samples"),
    (lambda: ld.EmpiricalDenoiser(torch.zeros(5)), ValueError, "samples"),
    (lambda: ld.sample(lambda x, t: x, torch.zeros(2, 3), VP, method="rk4"), ValueError, "method"),
    (lambda: ld.sample(None, torch.zeros(2, 3), VP), TypeError, "denoiser"),
    (lambda: ld.sample(lambda x, t: x, torch.zeros(3), VP), ValueError, "x_T"),
    (lambda: ld.sample(lambda x, t: x, torch.zeros(2, 3), VP, t_grid=torch.tensor([0.0, 1.0])), ValueError, "t_grid"),
    (lambda: ld.time_grid(VP, 0), ValueError, "steps"),
    (lambda: ld.time_grid(VP, 10, t_min=0.0), ValueError, "t_min"),
    (lambda: ld.score_from_denoiser("D", VP), TypeError, "denoiser"),
    (lambda: ld.MLPDenoiser(4, VP)(torch.zeros(2, 3), 0.5), ValueError, "x"),
    (lambda: ld.train_denoiser(ld.MLPDenoiser(2, VP), torch.zeros(8, 2), VP, steps=0), ValueError, "steps"),
    (lambda: ld.dsm_loss(ld.MLPDenoiser(2, VP), torch.zeros(8, 2), VP, weighting="snr"), ValueError, "weighting"),
    (lambda: ld.dsm_loss(ld.MLPDenoiser(2, VP), torch.full((8, 2), math.nan), VP), ValueError, "x0"),
    (lambda: ld.sample(lambda x, t: x, torch.zeros(2, 3), VP, method="sde"), ValueError, "generator"),
]


@pytest.mark.parametrize("call, exc, name", CASES, ids=[f"{i}-{c[2]}" for i, c in enumerate(CASES)])
def test_bad_input_names_the_argument(call, exc, name):
    with pytest.raises(exc, match=rf"^{re.escape(name)}(?!\w)"):
        call()
