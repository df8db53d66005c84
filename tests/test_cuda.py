"""The core follows its input's device: the same calls on CUDA tensors stay on CUDA and give the CPU's numbers (to
float round-off). Skipped without a GPU; run them wherever one is available."""

import pytest
import torch

import lowdim as ld

from .conftest import gen

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_subspaces_run_on_cuda():
    truth = ld.random_molrg(12, 2, 2, generator=gen(0))
    X = truth.sample(60, generator=gen(1))[0]
    bases, labels = ld.k_subspaces(X.cuda(), 2, 2, generator=gen(2))
    assert labels.device.type == "cuda" and all(U.device.type == "cuda" for U in bases)
    cpu_bases, cpu_labels = ld.k_subspaces(X, 2, 2, generator=gen(2))
    assert torch.equal(labels.cpu(), cpu_labels)
    assert ld.subspace_recovery_error([U.cpu() for U in bases], cpu_bases) < 1e-6
    fitted = ld.fit_molrg_denoiser(X.cuda(), 2, K=2, generator=gen(2))
    assert fitted.means_.device.type == "cuda"
    assert torch.equal(fitted.labels_.cpu(), cpu_labels)
    assert ld.pca(X.cuda(), 2).device.type == "cuda"


@pytest.mark.parametrize("method", ["euler", "heun", "ddim", "sde"])
def test_sampling_runs_on_cuda_with_a_cpu_generator(method):
    model = ld.random_molrg(6, 2, 1, generator=gen(3))
    cuda_model = ld.MoLRG([U.cuda() for U in model.bases])
    vp = ld.VP()
    x_T = ld.sample_prior(vp, (32, 6), generator=gen(4), device="cuda")
    assert x_T.device.type == "cuda"
    torch.testing.assert_close(x_T.cpu(), ld.sample_prior(vp, (32, 6), generator=gen(4)))
    out = ld.sample(cuda_model.denoiser(vp), x_T, vp, steps=10, method=method, generator=gen(5))
    ref = ld.sample(model.denoiser(vp), x_T.cpu(), vp, steps=10, method=method, generator=gen(5))
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-6, atol=1e-8)


def test_training_runs_on_cuda():
    data = ld.random_molrg(6, 2, 1, generator=gen(6)).sample(64, generator=gen(7))[0].float().cuda()
    model = ld.fit_denoiser(data, 5, generator=gen(8), width=8, depth=1)
    assert next(model.parameters()).device.type == "cuda"
    x = ld.sample(model, ld.sample_prior(model.schedule, (4, 6), generator=gen(9), dtype=torch.float32, device="cuda"),
                  model.schedule, steps=3)  # fmt: skip
    assert x.device.type == "cuda" and bool(torch.isfinite(x).all())
