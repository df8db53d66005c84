"""Every explorer and its static frame draws in a fresh kernel, whatever torch's default dtype (the chapters set
float64; a reader's kernel starts in float32), and the result figures draw from their studies' results."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from ipywidgets.widgets.widget_link import Link  # noqa: E402

import lowdim as ld  # noqa: E402
from lowdim import plotting, widgets  # noqa: E402
from lowdim.experiments import MemorizationSweep, ReproducibilitySweep, TeacherStudent  # noqa: E402

from .conftest import gen  # noqa: E402


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def default_dtype(request):
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(old)
    plt.close("all")


def _lines():
    return ld.random_molrg(d=2, K=2, r=1, generator=gen(0))


def _tiny_results(dim=4, shape=(1, 8, 8)):
    sizes = [2, 4]
    sweep = ReproducibilitySweep(["a"], [10], sizes, np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2, 2)),
                                 np.random.default_rng(0).standard_normal((1, 2, 3, *shape)).astype(np.float32))  # fmt: skip
    students = TeacherStudent([8], sizes, [10], np.ones((1, 2)), np.ones((1, 2)),
                              np.random.default_rng(1).standard_normal((1, 2, 5, dim)).astype(np.float32),
                              np.random.default_rng(2).standard_normal((4, dim)).astype(np.float32), 3)  # fmt: skip
    return sweep, students


def _scenes_net():
    # a network with a low-rank Jacobian: a random one's flat spectrum makes every top-k SVD run to max_iters
    return ld.load_checkpoint(ld.data_path("checkpoints/scenes_unet_n16384.pt"))[0]


FRAMES = {
    "noising": lambda: widgets.noising_frame(torch.randn(20, 2), torch.zeros(20), torch.randn(1, 8, 8), ld.VP()),
    "sampler": lambda: widgets.sampler_frame(_lines(), ld.VP(), steps=3, n=20),
    "denoiser": lambda: widgets.denoiser_frame({"exact": _lines().denoiser(ld.VP())}, _lines(), grid=5),
    "subspace_cell": lambda: widgets.subspace_cell_frame(K=2, r=2, n=3, d=8, steps=5),
    "digit_denoising": lambda: widgets.digit_denoising_frame(ld.digits()[0][:60], ld.digits()[0][60:66], K=2, r=2),
    "nearest_training": lambda: widgets.nearest_training_frame(
        _tiny_results()[0], torch.randn(4, 1, 8, 8), N=2, n_show=3
    ),  # fmt: skip
    "teacher_student": lambda: widgets.teacher_student_frame(
        _tiny_results()[1], ld.random_molrg(4, 2, 1, gen(3)), N=2, steps=3
    ),  # fmt: skip
    "singular_vectors": lambda: widgets.singular_vectors_frame(
        ld.UNetDenoiser((3, 4, 4), ld.VP(), channels=(4,)), torch.rand(3, 4, 4), k=2
    ),
    "loco_edit": lambda: widgets.loco_edit_frame(
        _scenes_net(), *ld.scenes(2, generator=gen(4)), image=1, obj=1, direction=2, null_rank=3, steps=4
    ),  # fmt: skip
    "watermark": lambda: widgets.watermark_frame(
        _scenes_net(), torch.randn(2, 3, 32, 32, generator=gen(5)), t_star=0.5, band="low", attack="noise0.1", steps=4
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", FRAMES)
def test_frame_draws_under_either_default_dtype(name, default_dtype):
    fig = FRAMES[name]()
    assert isinstance(fig, plt.Figure) and fig.axes


def _digits():
    images = ld.digits()[0]
    return images[:60], images[60:66]


# Every explorer, with inputs small enough to redraw in a second or two; each takes static= and grid=.
EXPLORERS = {
    "forward_noising": lambda **kw: widgets.forward_noising_explorer(
        torch.randn(20, 2), torch.zeros(20), torch.randn(1, 8, 8), ld.VP(), **kw
    ),  # fmt: skip
    "sampler": lambda **kw: widgets.sampler_explorer(_lines(), ld.VP(), n=20, **kw),
    "denoiser": lambda **kw: widgets.denoiser_explorer(
        {"exact": _lines().denoiser(ld.VP())}, _lines(), grid=5, **_times(kw)
    ),  # fmt: skip
    "subspace_cell": lambda **kw: widgets.subspace_cell_explorer(K=2, d=12, **kw),
    "pca_cell": lambda **kw: widgets.pca_cell_explorer(d=12, **kw),
    "digit_denoising": lambda **kw: widgets.digit_denoising_explorer(*_digits(), **kw),
    "nearest_training": lambda **kw: widgets.nearest_training_explorer(
        _tiny_results()[0], torch.randn(4, 1, 8, 8), **kw
    ),  # fmt: skip
    "teacher_student": lambda **kw: widgets.teacher_student_explorer(
        _tiny_results()[1], ld.random_molrg(4, 2, 1, gen(3)), **kw
    ),  # fmt: skip
    "singular_vectors": lambda **kw: widgets.singular_vectors_explorer(
        ld.UNetDenoiser((3, 4, 4), ld.VP(), channels=(4,)), torch.rand(3, 4, 4), **kw
    ),  # fmt: skip
    "loco_edit": lambda **kw: widgets.loco_edit_explorer(
        _scenes_net(), *ld.scenes(2, generator=gen(4)), null_rank=3, **kw
    ),  # fmt: skip
    "watermark": lambda **kw: widgets.watermark_explorer(
        _scenes_net(), torch.randn(2, 3, 32, 32, generator=gen(5)), steps=4, **kw
    ),  # fmt: skip
}

# Two values per control for the static tests (the first is each control's default); the live tests move every
# control to its second value here.
SMALL_GRIDS = {
    "forward_noising": {"t": [0.3, 0.9]},
    "sampler": {"method": ["heun", "sde"], "steps": [10, 2]},
    "denoiser": {"t": [0.2, 0.7]},
    "subspace_cell": {"r": [4, 2], "n": [4, 1], "seed": [0, 1]},
    "pca_cell": {"r": [4, 2], "n": [4, 1], "seed": [0, 1]},
    "digit_denoising": {"K": [10, 2], "r": [8, 2], "t": [0.3, 0.6]},
    "nearest_training": {"capacity": ["a"], "N": [4, 2]},
    "teacher_student": {"width": [8], "N": [4, 2]},
    "singular_vectors": {"t": [0.5, 0.9], "k": [6, 2]},
    "loco_edit": {"image": [0, 1], "obj": [0, 1], "direction": [1, 2], "lam": [2.0, -2.0]},
    "watermark": {"t_star": [0.3, 0.5], "band": ["high", "low"], "attack": ["clean", "jpeg25"]},
}


def _times(kw):
    # denoiser_explorer's ``grid`` is its arrow grid, so its precomputed settings are ``times``
    if "grid" in kw:
        kw = dict(kw)
        kw["times"] = kw.pop("grid")["t"]
    return kw


def _controls(box):
    return list(box.children[0].children)


def _shown_frame(box) -> bytes:
    node = box.children[1]
    while isinstance(node, ipywidgets.Stack):
        node = node.children[node.selected_index]
    return node.value


def test_every_explorer_is_tested():
    explorers = {name.removesuffix("_explorer") for name in widgets.__all__ if name.endswith("_explorer")}
    assert explorers == set(EXPLORERS) == set(SMALL_GRIDS)


@pytest.mark.parametrize("name", EXPLORERS)
def test_live_explorer_redraws_on_every_control(name, default_dtype):
    # the reported case: in a fresh float32 kernel, sampler_explorer(random_molrg(d=2, K=2, r=1), VP()) drew its prior
    # in float64 and failed
    box = EXPLORERS[name](static=False)
    grid = SMALL_GRIDS[name]
    assert "lowdim-explorer" in box._dom_classes
    controls = dict(zip([n for n in grid], _controls(box)))
    for control_name, control in controls.items():
        if len(grid[control_name]) < 2:
            continue
        before = box.children[1].value
        control.value = grid[control_name][1]  # raises here if the redraw fails
        assert box.children[1].value and box.children[1].value != before, control_name


@pytest.mark.parametrize("name", EXPLORERS)
def test_static_explorer_shows_the_frame_of_every_control(name):
    box = EXPLORERS[name](grid=SMALL_GRIDS[name])
    grid = {n: v for n, v in SMALL_GRIDS[name].items() if len(v) > 1}  # one value: held, not shown
    assert len(_controls(box)) == len(grid)
    stacks, node = 0, box.children[1]
    while isinstance(node, ipywidgets.Stack):
        stacks, node = stacks + 1, node.children[0]
    assert stacks == len(grid) and "Precomputed" in box.children[2].value
    # each control is jslink-ed to its stacks (the browser) and also drives them from Python (a kernel)
    links = [w for w in ipywidgets.Widget.widgets.values() if isinstance(w, Link)]
    for control in _controls(box):
        assert any(link.source == (control, "index") for link in links)
    for control, values in zip(_controls(box), grid.values()):
        before = _shown_frame(box)
        control.value = values[1]
        assert _shown_frame(box) != before, control.description
    plt.close("all")


def test_static_explorer_refuses_a_bad_grid():
    make = EXPLORERS["forward_noising"]
    with pytest.raises(ValueError, match="grid: unknown control"):
        make(grid={"time": [0.1]})
    with pytest.raises(ValueError, match="at least one value"):
        make(grid={"t": []})
    with pytest.raises(ValueError, match="more than"):
        make(grid={"t": list(np.linspace(0, 1, widgets.MAX_FRAMES + 1))})


def test_result_figures_draw():
    phase = ld.PhaseTransition("pca", 8, 1, [1, 2], [1, 2, 3], np.zeros((2, 3, 2)), 0.1)
    assert plotting.plot_phase_transition(phase).images
    memo = MemorizationSweep(8, 2, [1], [2, 4], np.array([[0.9, 0.1]]), np.array([[0.1, 0.01]]))
    sweep, students = _tiny_results()
    for fig in (plotting.plot_memorization(memo), plotting.plot_reproducibility(sweep),
                plotting.plot_teacher_student(students)):  # fmt: skip
        assert sum(len(ax.lines) for ax in fig.axes) >= 2
    with_bars = plotting.plot_reproducibility(sweep, replicates=[sweep, sweep])
    assert all(ax.containers for ax in with_bars.axes) and "3 seed pairs" in with_bars.axes[0].get_title()
    grid = plotting.image_grid(torch.rand(2, 3, 3, 4, 4), ["a", "b"], ["x", "y", "z"])
    assert len(grid.axes) == 6 and grid.axes[0].get_ylabel() == "a" and grid.axes[2].get_title() == "z"
    plt.close("all")
