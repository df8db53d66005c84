import pytest
import torch


@pytest.fixture(autouse=True)
def _float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def _restore_global_generator():
    # tests that seed torch's global (CPU) generator, e.g. with torch.manual_seed to fix a network's initialization,
    # hand it back as they found it
    with torch.random.fork_rng(devices=[]):
        yield


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
