"""The objective evaluation of LOCO edits: factor matching, the local-edit test, transfer, linearity and the image
quality outside the mask, each against a hand-made case whose answer is known."""

import math

import numpy as np
import pytest
import torch

import lowdim as ld
from lowdim.data import coverage
from lowdim.experiments.loco import (
    THRESHOLDS,
    EditStudy,
    group_sizes,
    matched,
    merge,
    object_masks,
    outside_quality,
    transfer_partners,
)
from lowdim.factors import SceneFit

from .conftest import gen


def _study(change, other=None, flips=None, outside=None, lam=None, methods=None) -> EditStudy:
    change = np.asarray(change, dtype=float)
    C, N = change.shape[:2]
    return EditStudy(
        methods or ["loco"] * C, np.full(C, 0.5), np.full(C, 20), np.asarray(lam if lam is not None else np.ones(C)),
        np.zeros(C, dtype=int), change, np.zeros_like(change) if other is None else np.asarray(other, dtype=float),
        np.zeros((C, N, 2), dtype=bool) if flips is None else np.asarray(flips),
        np.zeros((C, N)) if outside is None else np.asarray(outside, dtype=float), np.zeros((C, N)),
        np.zeros((C, N)), np.zeros((C, N)), np.zeros((C, N)), np.zeros((1, N)), np.array([0.5]),
        np.zeros((1, N, 5)), np.full((C, N), np.nan), 0.0, 0.0,
    )  # fmt: skip


def test_group_sizes_are_changes_in_threshold_units():
    change = np.array([0.05, -0.2, 0.0, 3.0, 4.0, -0.5])  # colour max 0.2, shift 5 px, radius 0.5 px
    sizes = group_sizes(change)
    np.testing.assert_allclose(sizes, [0.2 / 0.1, 5 / 0.5, 0.5 / 0.25])


def test_local_edit_test_passes_one_clean_change_and_names_each_failure():
    colour_only = [0.3, 0, 0, 0.1, 0, 0.05]
    cases = [
        (colour_only, None, None, 0.0),  # success
        ([0.3, 0, 0, 2.0, 0, 0], None, None, 0.0),  # colour and position: not a single group
        ([0.02, 0, 0, 0.1, 0, 0], None, None, 0.0),  # nothing beyond a threshold
        (colour_only, [0, 0, 0, 0.8, 0, 0], None, 0.0),  # the other object moved
        (colour_only, None, [True, False], 0.0),  # the edited object changed kind
        (colour_only, None, None, 0.05),  # the outside changed
    ]
    study = _study(
        [[c[0]] for c in cases], [[c[1] or [0] * 6] for c in cases], [[c[2] or [False, False]] for c in cases],
        [[c[3]] for c in cases],
    )  # fmt: skip
    out = study.outcomes()
    assert out["success"][:, 0].tolist() == [True, False, False, False, False, False]
    assert out["single"][:, 0].tolist() == [True, False, False, True, False, True]
    assert not out["changed"][2, 0] and not out["other_still"][3, 0] and not out["local"][5, 0]
    assert out["group"][0, 0] == 0 and out["group"][1, 0] == 1
    # with a tighter colour threshold case 2's small colour change counts as an edit
    assert study.outcomes(THRESHOLDS._replace(colour=0.01))["success"][2, 0]


def test_transfer_needs_the_same_group_and_sign_and_homogeneity_is_a_cosine():
    source = [[0.3, 0.1, 0, 0, 0, 0]] * 3
    target = [[0.2, 0.0, 0, 0, 0, 0], [-0.2, 0, 0, 0, 0, 0], [0, 0, 0, 1.0, 0, 0]]
    study = _study([source, target])
    assert study.transfer(0, 1).tolist() == [True, False, False]
    np.testing.assert_allclose(study.homogeneity(0, 1), [3 / math.sqrt(10), -3 / math.sqrt(10), 0.0], atol=1e-12)


def test_linearity_is_one_for_a_linear_change_and_less_for_a_saturating_one():
    lam = np.array([-2.0, -1.0, 1.0, 2.0])
    direction = np.array([0.1, 0, 0, 0.5, 0, 0])
    linear = lam[:, None, None] * direction
    saturating = np.tanh(2 * lam)[:, None, None] * direction
    study = _study(np.concatenate([linear, saturating], 1), lam=lam)
    r2, reverses = study.linearity(np.arange(4))
    assert r2[0] == pytest.approx(1.0, abs=1e-12) and r2[1] < 0.95
    assert reverses.all()


def test_merge_joins_images_and_weights_times():
    a, b = _study(np.zeros((2, 3, 6))), _study(np.ones((2, 1, 6)))
    a.seconds_edit, b.seconds_edit = 1.0, 5.0
    joined = merge([a, b])
    assert joined.change.shape == (2, 4, 6) and joined.seconds_edit == pytest.approx(2.0)
    assert joined.method == a.method


def test_records_survive_a_save_and_load(tmp_path):
    study = _study(np.random.default_rng(0).normal(size=(3, 2, 6)), methods=["loco", "masked", "transfer"])
    study.save(tmp_path / "s.npz")
    back = EditStudy.load(tmp_path / "s.npz")
    assert back.method == study.method and back.specs()[2].method == "transfer"
    np.testing.assert_array_equal(back.change, study.change)
    assert back.rows(method="masked").tolist() == [1]


def test_matching_follows_objects_not_their_left_to_right_order():
    kind = torch.tensor([[0, 1]])
    before = SceneFit(kind, torch.tensor([[[10.0, 8.0], [12.0, 24.0]]]), torch.tensor([[4.0, 5.0]]),
                      torch.zeros(1, 2, 3), torch.zeros(1))  # fmt: skip
    # the edit moved object 0 right past object 1's x: the fit lists them the other way round
    after = SceneFit(kind.flip(1), torch.tensor([[[12.0, 24.0], [14.0, 8.0]]]), torch.tensor([[5.0, 4.0]]),
                     torch.zeros(1, 2, 3), torch.zeros(1))  # fmt: skip
    m = matched(before, after)
    torch.testing.assert_close(m.center, torch.tensor([[[14.0, 8.0], [12.0, 24.0]]]))
    assert m.kind.tolist() == [[0, 1]] and m.radius.tolist() == [[4.0, 5.0]]


def test_transfer_partners_keep_the_edited_object_in_place_and_apart():
    x0, lat = ld.scenes(64, generator=gen(0), dtype=torch.float64)
    target = torch.arange(64) % 2
    images, new = transfer_partners(lat, target, gen(1))
    rows = torch.arange(64)
    assert torch.equal(new["kind"], lat["kind"])
    torch.testing.assert_close(new["center"], lat["center"])
    assert (new["colour"] - lat["colour"]).abs().amax((1, 2)).min() > 0
    changed = (new["radius"][rows, target] != lat["radius"][rows, target]).float().mean()
    assert changed > 0.5  # most radii are redrawn; the rest would have brought the objects too close
    cover = [coverage(new["kind"][:, j], new["center"][:, j], new["radius"][:, j]) for j in range(2)]
    assert float((cover[0] * cover[1]).max()) == 0.0
    torch.testing.assert_close(images, ld.render_scenes(new["kind"], new["center"], new["radius"], new["colour"]))
    masks = object_masks(new, target)
    assert masks.shape == (64, 1, 32, 32)
    edited = coverage(new["kind"][rows, target], new["center"][rows, target], new["radius"][rows, target])
    assert bool((masks[:, 0][edited > 0] == 1).all())  # the mask holds the whole edited object ...
    spare = coverage(new["kind"][rows, 1 - target], new["center"][rows, 1 - target], new["radius"][rows, 1 - target])
    assert float((masks[:, 0] * spare).sum()) == 0  # ... and none of the other one


def test_outside_quality_against_hand_computed_values():
    x0, lat = ld.scenes(2, generator=gen(2), dtype=torch.float64)
    inside = object_masks(lat, torch.tensor([0, 1])).double()
    rms, psnr, ssim = outside_quality(x0, x0, inside)
    np.testing.assert_allclose(rms, 0.0)
    np.testing.assert_allclose(ssim, 1.0)
    shifted = x0 + 0.05 * (1 - inside)  # every outside pixel moves by 0.05; the inside is left as it was
    rms, psnr, _ = outside_quality(shifted, x0, inside)
    np.testing.assert_allclose(rms, 0.05, rtol=1e-12)
    np.testing.assert_allclose(psnr, 10 * np.log10(4 / 0.05**2), rtol=1e-12)
    rms, _, ssim_in = outside_quality(x0 + 0.5 * inside, x0, inside)  # a change inside only
    np.testing.assert_allclose(rms, 0.0)
    assert (ssim_in < 1).all() and (ssim_in > 0.8).all()  # SSIM windows reach across the mask's edge


def test_best_settings_follow_the_highest_success_and_the_direction_rule():
    good, none = [0.3, 0, 0, 0, 0, 0], [0.0] * 6
    specs, changes = [], []
    for t in (0.3, 0.5):
        for lam in (1.0, -1.0, 2.0, -2.0):
            for r in (0, 20):
                win = t == 0.5 and abs(lam) == 2.0 and r == 20
                specs.append((t, r, lam, 0)), changes.append([good if win else none] * 4)
            for j, hits in ((1, 2), (2, 1)):  # at the best cell v2 succeeds on 2 of 4 scenes, v3 on 1
                win = t == 0.5 and abs(lam) == 2.0
                specs.append((t, 20, lam, j)), changes.append([good if win and i < hits else none for i in range(4)])
    study = _study(changes, lam=[s[2] for s in specs])
    study.t, study.null_rank = np.array([s[0] for s in specs]), np.array([s[1] for s in specs])
    study.direction = np.array([s[3] for s in specs])
    best = study.best_settings()
    assert (best["t"], best["null_rank"], best["lam"], best["success"]) == (0.5, 20, 2.0, 1.0)
    assert best["direction_success"] == [1.0, 0.5, 0.25] and best["rank"] == 2
