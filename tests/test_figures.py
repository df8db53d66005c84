"""Every explorer and its static frame draws in a fresh kernel, whatever torch's default dtype (the chapters set
float64; a reader's kernel starts in float32), and the result figures draw from their studies' results."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

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


EXPLORERS = {
    "forward_noising": lambda: widgets.forward_noising_explorer(
        torch.randn(20, 2), torch.zeros(20), torch.randn(1, 8, 8), ld.VP()
    ),  # fmt: skip
    "sampler": lambda: widgets.sampler_explorer(_lines(), ld.VP(), n=20),
    "denoiser": lambda: widgets.denoiser_explorer({"exact": _lines().denoiser(ld.VP())}, _lines(), grid=5),
    "loco_edit": lambda: widgets.loco_edit_explorer(_scenes_net(), *ld.scenes(2, generator=gen(4)), null_rank=3),
    "watermark": lambda: widgets.watermark_explorer(
        _scenes_net(), torch.randn(2, 3, 32, 32, generator=gen(5)), steps=4
    ),
}


@pytest.mark.parametrize("name", EXPLORERS)
def test_explorer_builds_and_draws_under_either_default_dtype(name, default_dtype):
    # the reported case: in a fresh float32 kernel, sampler_explorer(random_molrg(d=2, K=2, r=1), VP()) drew its prior
    # in float64 and failed
    box = EXPLORERS[name]()
    assert len(box.children) == 2


def test_result_figures_draw():
    phase = ld.PhaseTransition("pca", 8, 1, [1, 2], [1, 2, 3], np.zeros((2, 3, 2)), 0.1)
    assert plotting.plot_phase_transition(phase).images
    memo = MemorizationSweep(8, 2, [1], [2, 4], np.array([[0.9, 0.1]]), np.array([[0.1, 0.01]]))
    sweep, students = _tiny_results()
    for fig in (plotting.plot_memorization(memo), plotting.plot_reproducibility(sweep),
                plotting.plot_teacher_student(students)):  # fmt: skip
        assert sum(len(ax.lines) for ax in fig.axes) >= 2
    grid = plotting.image_grid(torch.rand(2, 3, 3, 4, 4), ["a", "b"], ["x", "y", "z"])
    assert len(grid.axes) == 6 and grid.axes[0].get_ylabel() == "a" and grid.axes[2].get_title() == "z"
    plt.close("all")
