"""Two-object scenes and the recovery of their factors by analysis-by-synthesis."""

import pytest
import torch
from scipy.optimize import linear_sum_assignment

import lowdim as ld
from lowdim.data import coverage, render_scenes
from lowdim.factors import fit_scene_factors

from .conftest import gen


def test_scenes_hold_two_separate_objects_rendered_from_their_factors():
    images, lat = ld.scenes(300, generator=gen(0))
    assert images.shape == (300, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    cover = coverage(lat["kind"].reshape(-1), lat["center"].reshape(-1, 2), lat["radius"].reshape(-1)).reshape(
        300, 2, 32, 32
    )
    assert float((cover[:, 0] * cover[:, 1]).sum()) == 0  # no pixel belongs to both objects
    assert bool((cover.sum((2, 3)) > 0.9 * 4 * lat["radius"] ** 2 * torch.pi / 4).all())  # both inside the frame
    torch.testing.assert_close(render_scenes(lat["kind"], lat["center"], lat["radius"], lat["colour"]), images)
    # one object alone is a shapes() image: the scene is the sum of the two renderings
    alone = [
        ld.render_shapes(lat["kind"][:, j], lat["center"][:, j], lat["radius"][:, j], lat["colour"][:, j])
        for j in (0, 1)
    ]
    torch.testing.assert_close(images, alone[0] + alone[1] + 1)
    again, _ = ld.scenes(300, generator=gen(0))
    assert torch.equal(images, again)


def _matched(fit_center, true_center):
    """Index of the true object matched to each fitted one (Hungarian on centre distance), per image."""
    out = []
    for a, b in zip(fit_center, true_center):
        rows, cols = linear_sum_assignment(torch.cdist(a, b).numpy())
        out.append(torch.as_tensor(cols[rows.argsort()]))
    return torch.stack(out)


def test_factors_of_rendered_scenes_are_recovered_exactly():
    images, lat = ld.scenes(24, generator=gen(1))
    fit = fit_scene_factors(images)
    match = _matched(fit.center, lat["center"])
    pick = lambda v: v.gather(1, match.reshape(24, 2, *([1] * (v.dim() - 2))).expand_as(v))  # noqa: E731
    assert torch.equal(fit.kind, pick(lat["kind"]))
    torch.testing.assert_close(fit.center, pick(lat["center"]), rtol=0, atol=1e-4)
    torch.testing.assert_close(fit.radius, pick(lat["radius"]), rtol=0, atol=1e-4)
    torch.testing.assert_close(fit.colour, pick(lat["colour"]), rtol=0, atol=1e-4)
    assert float(fit.residual.max()) < 1e-4


def test_residual_flags_what_the_scene_model_cannot_explain():
    images, _ = ld.scenes(8, generator=gen(2))
    blurred = torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    clean, blur = fit_scene_factors(images).residual, fit_scene_factors(blurred).residual
    assert float(clean.max()) < 1e-4 and float(blur.min()) > 0.02


def test_scene_inputs_are_checked():
    with pytest.raises(ValueError, match="^size"):
        ld.scenes(2, size=8)
    with pytest.raises(ValueError, match="^images"):
        fit_scene_factors(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="^center"):
        render_scenes(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2), torch.ones(2, 2), torch.zeros(2, 2, 3))
