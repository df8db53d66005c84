"""The package's layers: core -> lowdim.experiments -> lowdim.plotting / lowdim.widgets (DESIGN.md, "Layers").

The import contracts live in pyproject.toml ([tool.importlinter]) and are checked here with import-linter; the
tests below also make sure every module is assigned to a layer, and that ``import lowdim`` loads no plotting.
"""

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

import lowdim

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
FIGURES = {"lowdim.plotting", "lowdim.widgets"}


def _contracts() -> list[dict]:
    return tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]


def test_import_lowdim_loads_neither_matplotlib_nor_ipywidgets():
    code = "import sys, lowdim; print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets')"
    code += " or m in ('lowdim.plotting', 'lowdim.widgets')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_import_contracts_hold():
    assert lint_imports(config_filename=str(CONFIG), no_cache=True) == 0


def test_a_broken_contract_is_reported(tmp_path):
    # the checker is not vacuous: forbid an import that exists (the kernel uses torch) and it must fail
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[tool.importlinter]\nroot_package = "lowdim"\ninclude_external_packages = true\n'
        '[[tool.importlinter.contracts]]\nname = "x"\ntype = "forbidden"\n'
        'source_modules = ["lowdim.jacobian"]\nforbidden_modules = ["torch"]\n'
    )
    assert lint_imports(config_filename=str(broken), no_cache=True) != 0


def test_every_module_belongs_to_one_layer():
    core = set(_contracts()[0]["source_modules"])
    modules = {m.name for m in pkgutil.walk_packages(lowdim.__path__, "lowdim.")}
    experiments = {m for m in modules if m == "lowdim.experiments" or m.startswith("lowdim.experiments.")}
    unassigned = modules - core - experiments - FIGURES
    assert not unassigned, f"add these modules to a layer in pyproject.toml: {sorted(unassigned)}"
    assert not core & (experiments | FIGURES)


@pytest.mark.parametrize("name", lowdim.__all__)
def test_every_public_name_is_documented(name):
    obj = getattr(lowdim, name)
    assert (obj.__doc__ or "").strip(), f"lowdim.{name} has no docstring"
