"""Image data, the U-Net/MLP denoisers, EMA and checkpoints."""

import math

import pytest
import torch

import lowdim as ld
from lowdim.checkpoints import load_checkpoint, save_checkpoint
from lowdim.data import render_shapes, shapes
from lowdim.models import UNetDenoiser
from lowdim.train import ema_model

from .conftest import gen


def test_digits_are_scaled_to_the_unit_box():
    images, labels = ld.digits()
    assert images.shape == (1797, 1, 8, 8) and labels.shape == (1797,)
    assert images.min() == -1 and images.max() == 1
    assert set(labels.tolist()) == set(range(10))


def test_shapes_are_reproducible_and_in_range():
    a, la = shapes(64, generator=gen(3))
    b, lb = shapes(64, generator=gen(3))
    assert torch.equal(a, b) and all(torch.equal(la[k], lb[k]) for k in la)
    assert a.shape == (64, 3, 32, 32) and a.min() >= -1 and a.max() <= 1
    # the whole shape stays inside the frame: the border rows and columns are background
    border = torch.cat([a[..., 0, :], a[..., -1, :], a[..., :, 0], a[..., :, -1]], dim=-1)
    assert torch.all(border == -1)


def test_shape_areas_match_geometry():
    # coverage summed over pixels is the shape's area: pi rho^2 for a disc, (2 rho)^2 for a square
    n = 200
    _, lat = shapes(n, generator=gen(1))
    white = torch.ones(n, 3)
    img = render_shapes(lat["kind"], lat["center"], lat["radius"], white, 32)
    area = ((img[:, 0] + 1) / 2).sum((1, 2))
    rho = lat["radius"]
    exact = torch.where(lat["kind"] == 0, math.pi * rho**2, 4 * rho**2)
    # the one-pixel edge ramp sampled at pixel centres: within 1.5 % per image, 0.5 % on average
    rel = area / exact - 1
    assert rel.abs().max() < 0.015 and rel.abs().mean() < 0.005


def test_each_kind_is_a_six_dimensional_manifold():
    # Jacobian of the rendering w.r.t. (center, radius, colour) by autograd has rank exactly 6 ...
    _, lat = shapes(4, generator=gen(2))
    for i in range(4):

        def render(z, i=i):
            return render_shapes(lat["kind"][i : i + 1], z[None, :2], z[2:3], z[None, 3:], 32).reshape(-1)

        z = torch.cat([lat["center"][i], lat["radius"][i : i + 1], lat["colour"][i]])
        J = torch.autograd.functional.jacobian(render, z)
        s = torch.linalg.svdvals(J)
        assert s[5] > 1e-2 * s[0]
        assert torch.linalg.matrix_rank(J) == 6
        # ... and agrees with central finite differences
        h = 1e-6
        fd = torch.stack([(render(z + h * e) - render(z - h * e)) / (2 * h) for e in torch.eye(6)], dim=1)
        assert torch.allclose(J, fd, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: ld.MLPDenoiser(3 * 8 * 8, s, width=32, depth=2),
        lambda s: UNetDenoiser((3, 8, 8), s, channels=(8, 16)),
    ],
)
def test_preconditioned_denoisers_become_the_identity_at_t0(make):
    # c_skip -> 1 and c_out -> 0 as sigma -> 0, whatever the weights
    schedule = ld.VP()
    torch.manual_seed(0)
    model = make(schedule)
    x = torch.randn(5, 3, 8, 8)
    out = model(x, 0.0)
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-4)
    assert torch.isfinite(model(100 * x, 1.0)).all()


def test_unet_validates_its_shape():
    with pytest.raises(ValueError, match="^shape"):
        UNetDenoiser((3, 10, 10), ld.VP(), channels=(8, 16, 32))
    with pytest.raises(ValueError, match="^shape"):
        UNetDenoiser((8, 8), ld.VP())
    with pytest.raises(ValueError, match="^x"):
        UNetDenoiser((1, 8, 8), ld.VP(), channels=(8,))(torch.zeros(2, 1, 4, 4), 0.5)


def test_ema_follows_the_recursion():
    # AveragedModel copies the weights at the first update, then ema <- d ema + (1 - d) theta
    torch.manual_seed(0)
    model = ld.MLPDenoiser(4, ld.VP(), width=8, depth=1)
    ema = ema_model(model, decay=0.9)
    data = torch.randn(32, 4)
    expected = None
    for step in range(4):
        ld.train_denoiser(model, data, ld.VP(), 1, batch_size=8, generator=gen(step), progress=False, ema=ema)
        theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        expected = theta if expected is None else 0.9 * expected + 0.1 * theta
    got = torch.nn.utils.parameters_to_vector(ema.module.parameters())
    assert torch.allclose(got, expected, atol=1e-12)
    with pytest.raises(TypeError, match="^ema"):
        ld.train_denoiser(model, data, ld.VP(), 1, ema=model)
    with pytest.raises(ValueError, match="^decay"):
        ema_model(model, decay=1.0)


def test_unet_trains_on_small_shapes():
    torch.manual_seed(0)
    images, _ = shapes(256, size=8, generator=gen(0))
    model = UNetDenoiser((3, 8, 8), ld.VP(), channels=(8, 16))
    losses = ld.train_denoiser(model, images, ld.VP(), 200, batch_size=32, lr=3e-3, generator=gen(1), progress=False)
    assert sum(losses[-40:]) / 40 < 0.6 * sum(losses[:20]) / 20


@pytest.mark.parametrize(
    "make",
    [lambda s: ld.MLPDenoiser(64, s, width=16, depth=2), lambda s: UNetDenoiser((1, 8, 8), s, channels=(8, 16))],
)
def test_checkpoint_round_trip(tmp_path, make):
    schedule = ld.VE(sigma_min=0.02, sigma_max=40.0)
    torch.manual_seed(1)
    model = make(schedule).float()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, seed=3, note="test", losses=torch.arange(3.0))
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.schedule == schedule
    assert meta["seed"] == 3 and meta["note"] == "test" and torch.equal(meta["losses"], torch.arange(3.0))
    x = torch.randn(4, 1, 8, 8, dtype=torch.float32)
    assert torch.equal(loaded(x, 0.3), model(x, 0.3))
    assert not loaded.training


class Evil:
    pass


def test_checkpoints_refuse_pickled_code(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"format": 1, "model": "MLPDenoiser", "payload": Evil()}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unpickl"):
        load_checkpoint(path)
    torch.save({"format": 99}, path)
    with pytest.raises(ValueError, match="^path"):
        load_checkpoint(path)
    with pytest.raises(TypeError, match="^model"):
        save_checkpoint(path, torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"^meta\['bad'\]\[1\]"):
        save_checkpoint(path, ld.MLPDenoiser(4, ld.VP(), width=4, depth=1), bad=[1, Evil()])


def test_fit_denoiser_is_reproducible_and_leaves_the_global_generator_alone():
    from lowdim.experiments.reproducibility import draw_samples

    data = ld.digits(shuffle=True, generator=torch.Generator().manual_seed(0))[0][:32]
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = ld.fit_denoiser(data, 20, generator=gen(4), width=16, depth=1)
    after = torch.rand(3)
    b = ld.fit_denoiser(data, 20, generator=gen(4), width=16, depth=1)
    c = ld.fit_denoiser(data, 20, generator=gen(5), width=16, depth=1)
    assert torch.equal(before, after)
    x1, x2 = (draw_samples(m, (1, 8, 8), 4, gen(0), steps=5, dtype=torch.float64) for m in (a, b))
    assert torch.equal(x1, x2)
    assert not torch.equal(x1, draw_samples(c, (1, 8, 8), 4, gen(0), steps=5, dtype=torch.float64))


def test_initialization_from_a_stream_equals_seeding_the_global_generator():
    # drawing_from(stream(s)) gives layer initialization the numbers torch.manual_seed(s) would, and advances the
    # stream by what it drew (the next draw continues the same sequence)
    from lowdim._random import drawing_from, stream

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        reference = ld.MLPDenoiser(6, ld.VP(), width=8, depth=2).state_dict()
        following = torch.rand(4)
    g = stream(9)
    with drawing_from(g):
        model = ld.MLPDenoiser(6, ld.VP(), width=8, depth=2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert torch.equal(torch.rand(4, generator=g), following)


def test_lognormal_noise_levels_follow_the_edm_law():
    # noise="lognormal": log sigma of the drawn times is N(-1.2, 1.2^2) (clipped where t leaves [t_min, 1]); the
    # default draws t uniformly, whose log sigma has a very different law
    seen = []

    def record(x, t):
        seen.append(t)
        return x

    vp, x0 = ld.VP(), torch.zeros(20000, 2)
    ld.dsm_loss(record, x0, vp, generator=gen(3), sigma_data=0.5, noise="lognormal")
    log_sigma = vp.sigma(seen[0]).log()
    inside = (seen[0] > 1e-3) & (seen[0] < 1)
    assert float(inside.double().mean()) > 0.97
    assert abs(float(log_sigma[inside].mean()) + 1.2) < 0.05 and abs(float(log_sigma[inside].std()) - 1.2) < 0.05
    ld.dsm_loss(record, x0, vp, generator=gen(3), sigma_data=0.5)
    assert float(vp.sigma(seen[1]).log().mean()) > 0.5
    with pytest.raises(ValueError, match="^noise"):
        ld.dsm_loss(record, x0, vp, sigma_data=0.5, noise="normal")


def test_dsm_loss_weights_with_the_models_sigma_data():
    # the EDM weight (s^2 + sd^2)/(s sd)^2 must use the model's own sigma_data: recompute the loss by hand from the
    # same draws for sigma_data = 1 and compare; the default 0.5 would give a different number
    model = ld.MLPDenoiser(4, ld.VP(), width=8, depth=1, sigma_data=1.0)
    x0 = torch.randn(64, 4, generator=gen(1))
    loss = ld.dsm_loss(model, x0, ld.VP(), generator=gen(2))
    g = gen(2)
    t = 1e-3 + (1 - 1e-3) * torch.rand(64, generator=g)
    eps = torch.randn(x0.shape, generator=g)
    vp = ld.VP()
    with torch.no_grad():
        err = ((model(vp.alpha(t)[:, None] * x0 + vp.beta(t)[:, None] * eps, t) - x0) ** 2).sum(1)
    s2 = vp.sigma(t) ** 2
    by_hand = {sd: ((s2 + sd**2) / (s2 * sd**2) * err).mean() for sd in (1.0, 0.5)}
    torch.testing.assert_close(loss.detach(), by_hand[1.0])
    assert abs(float(by_hand[0.5] - by_hand[1.0])) > 0.1 * float(by_hand[1.0])
    with pytest.raises(ValueError, match="sigma_data"):
        ld.dsm_loss(lambda x, t: x, x0, vp)


def test_digits_shuffle_is_a_fixed_permutation():
    images, labels = ld.digits()
    shuffled, shuffled_labels = ld.digits(shuffle=True, generator=torch.Generator().manual_seed(0))
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    assert torch.equal(shuffled, images[order]) and torch.equal(shuffled_labels, labels[order])
