"""Covering numbers and nearest-neighbour distances: closed forms against Monte Carlo."""

import math

import pytest
import torch

import lowdim as ld
from lowdim.covering import covering_number
from tests.conftest import gen


@pytest.mark.parametrize("d, n", [(1, 10), (2, 50), (5, 200)])
def test_expected_sup_norm_nn_distance_on_the_torus(d, n):
    g = gen(d)
    S, M = 400, 25  # independent data sets, queries per data set
    dist = ld.nn_distance(torch.rand(S, M, d, generator=g), torch.rand(S, n, d, generator=g), norm="linf", torus=True)
    per_set = dist.mean(1)
    mc, se = per_set.mean().item(), per_set.std().item() / math.sqrt(S)
    assert abs(mc - ld.expected_nn_distance(n, d)) < 4 * se


def test_nn_distance_scales_with_the_intrinsic_dimension():
    # Points on a 2-dimensional subspace of R^64: the nearest-sample distance falls like N^(-1/2), as in R^2.
    g = gen(3)
    U = torch.linalg.qr(torch.randn(64, 2, generator=g))[0]
    slopes = []
    for n in (100, 1600):
        dist = ld.nn_distance(torch.randn(2000, 2, generator=g) @ U.T, torch.randn(n, 2, generator=g) @ U.T)
        slopes.append(dist.mean().log().item())
    slope = (slopes[1] - slopes[0]) / math.log(16)
    assert abs(slope + 0.5) < 0.05


def test_nn_distance_matches_cdist_and_validates():
    q, x = torch.randn(7, 3, generator=gen(4)), torch.randn(11, 3, generator=gen(5))
    torch.testing.assert_close(ld.nn_distance(q, x, chunk_size=2), torch.cdist(q, x).amin(1))
    torch.testing.assert_close(ld.nn_distance(q, x, norm="linf"), torch.cdist(q, x, p=math.inf).amin(1))
    with pytest.raises(ValueError, match="^norm must be"):
        ld.nn_distance(q, x, norm="l1")
    with pytest.raises(ValueError, match="^data must have shape"):
        ld.nn_distance(q, x[:, :2])


def test_covering_number_bounds():
    assert covering_number(0.25, 3) == 8 and covering_number(0.1, 2) == 25
    assert covering_number(0.1, 1024) == 5**1024  # exact integer: 716 digits
    for eps, d in [(0.3, 4), (0.07, 3)]:
        assert (1 / (2 * eps)) ** d <= covering_number(eps, d) <= (1 / (2 * eps) + 1) ** d
    with pytest.raises(ValueError, match="^eps"):
        covering_number(0.0, 2)
