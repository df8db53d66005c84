import pytest
import torch


@pytest.fixture(autouse=True)
def _float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
