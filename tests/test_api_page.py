"""book/api.md documents every public name of lowdim under the name users import it by, without building the book.

The page's entries are autodoc directives in ```{eval-rst} blocks: ``.. autofunction:: lowdim.sample`` for a name
of ``lowdim.__all__``, ``.. autofunction:: lowdim.dae.dae_loss`` for a submodule helper, ``.. automodule::`` for a
whole module. Here they are read as text, so a name added to ``__all__`` without an entry, or an entry left behind
by a rename or a move, fails in ``make test`` instead of in the book build.
"""

import importlib
import re
import sys
from pathlib import Path

import pytest

import lowdim

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "book" / "api.md"
DIRECTIVE = re.compile(r"\.\. auto(function|class|data|exception|attribute|module)::\s+(\S+)\s*$")


def entries(text: str) -> list[tuple[str, str]]:
    """``(kind, dotted name)`` of every autodoc directive at the top level of an ``{eval-rst}`` block."""
    found, fence = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if fence is None:
            if stripped.startswith("```{eval-rst}"):
                fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
        elif stripped == fence:
            fence = None
        elif m := DIRECTIVE.match(line):  # not indented: indented directives would sit in a comment or a container
            found.append((m[1], m[2]))
    return found


def documented_public_names(text: str) -> set[str]:
    """The ``X`` of every entry ``lowdim.X`` (one component after the package): names documented at top level."""
    return {name.split(".", 1)[1] for kind, name in entries(text) if kind != "module" and name.count(".") == 1}


@pytest.fixture(scope="module")
def page() -> str:
    return API_PAGE.read_text()


def test_every_public_name_is_documented(page):
    missing = sorted(set(lowdim.__all__) - documented_public_names(page))
    assert not missing, f"book/api.md has no `.. autoX:: lowdim.<name>` entry for: {missing}"


def test_no_name_is_documented_twice(page):
    names = [name for _, name in entries(page)]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_top_level_entries_are_public(page):
    # lowdim.<name> is the path a reader imports; one outside __all__ belongs under its submodule.
    extra = sorted(documented_public_names(page) - set(lowdim.__all__))
    assert not extra, f"documented as lowdim.<name> but not in lowdim.__all__: {extra}"


def test_every_entry_resolves(page):
    """Each entry names an importable module or an attribute of one (catches entries a move left behind)."""
    unresolved = []
    for kind, name in entries(page):
        module, _, attr = name.rpartition(".")
        try:
            if kind == "module":
                importlib.import_module(name)
            else:
                getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            unresolved.append(name)
    assert not unresolved, f"book/api.md entries that do not import: {unresolved}"


def test_a_missing_entry_is_caught(page):
    # The parser must see each entry: dropping one line drops exactly that name.
    dropped = re.sub(r"(?m)^\.\. autofunction:: lowdim\.sample\n", "", page)
    assert documented_public_names(page) - documented_public_names(dropped) == {"sample"}
    fenced_out = "```python\n.. autofunction:: lowdim.sample\n```\n"
    assert documented_public_names(fenced_out) == set()


# The cross-reference resolver of the book build (_ext/lowdim_xref.py), on a fake inventory.
sys.path.insert(0, str(ROOT / "_ext"))
lowdim_xref = pytest.importorskip("lowdim_xref")

OBJECTS = {
    "lowdim.sample": "function",
    "lowdim.train_dae": "function",
    "lowdim.MoLRG": "class",
    "lowdim.MoLRG.sample": "method",
    "lowdim.jacobian.point_ranks": "function",
    "lowdim.phase.fit": "function",
    "lowdim.pfd.fit": "function",
}
FUNC, METH, CLASS = ["function"], ["method", "classmethod", "staticmethod"], ["class", "exception"]


@pytest.mark.parametrize(
    ("target", "objtypes", "expected"),
    [
        ("lowdim.dae.train_dae", FUNC, "lowdim.train_dae"),  # re-exported name, written with its submodule
        ("train_dae", FUNC, "lowdim.train_dae"),  # bare name inside its module
        ("point_ranks", FUNC, "lowdim.jacobian.point_ranks"),  # documented only under its submodule
        ("lowdim.models.MoLRG", CLASS, "lowdim.MoLRG"),
        ("lowdim.molrg.MoLRG.sample", METH, "lowdim.MoLRG.sample"),  # longest tail first, not lowdim.sample
        ("sample", FUNC, "lowdim.sample"),  # the role picks the function over the method
        ("sample", METH, "lowdim.MoLRG.sample"),
        ("fit", FUNC, None),  # ambiguous: two submodules
        ("train_dea", FUNC, None),  # a typo stays missing
        ("sample", CLASS, None),  # wrong role
        ("torch.Tensor", CLASS, None),  # not lowdim's
    ],
)
def test_xref_resolution(target, objtypes, expected):
    assert lowdim_xref.find_target(target, objtypes, OBJECTS) == expected
