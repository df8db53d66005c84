"""Sphinx extension: resolve cross-references to lowdim's re-exported names.

lowdim's public names live in submodules (``lowdim.dae.train_dae``) but the API page documents them where users
import them from (``lowdim.train_dae``). Docstrings refer to them either way, and by bare name inside their own
module (``:func:`jacobian_svd``` in ``lowdim.jacobian``), and type hints name the defining module
(``lowdim.schedules.Schedule``). Sphinx looks targets up literally, so each form misses an object documented under
the other name.

On ``missing-reference`` in the py domain, for a target ``lowdim.<path>.<name>`` or a bare ``<name>``, this links
to the documented ``lowdim.*`` object of a type the role allows (``:func:`` a function, ``:class:`` a class, ...)
whose dotted name ends the same way: the longest matching tail of the target wins (``lowdim.molrg.MoLRG.sample``
finds ``lowdim.MoLRG.sample`` before any other ``sample``), and among objects with that tail ``lowdim.<tail>``
itself, else the only one. Anything else (no match, an ambiguous match, a target outside lowdim) stays missing, so
nitpicky mode still reports real typos.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.util.nodes import make_refnode

PACKAGE = "lowdim"


def find_target(target: str, objtypes: list[str], objects: dict[str, str]) -> str | None:
    """The documented name (a key of ``objects``, which maps names to object types) that ``target`` means, or None."""
    parts = target.split(".")
    if parts[0] == PACKAGE:
        parts = parts[1:]
    elif len(parts) > 1:
        return None  # dotted but not lowdim's: an external name
    for k in range(len(parts), 0, -1):
        tail = ".".join(parts[-k:])
        found = [
            name
            for name, objtype in objects.items()
            if objtype in objtypes and name.startswith(PACKAGE + ".") and name.endswith("." + tail)
        ]
        if f"{PACKAGE}.{tail}" in found:
            return f"{PACKAGE}.{tail}"
        if len(found) == 1:
            return found[0]
        if found:
            return None  # ambiguous
    return None


def resolve(app: Sphinx, env, node, contnode):
    """``missing-reference`` handler: a reference node to the object :func:`find_target` picks, or None."""
    target = node["reftarget"]
    if node.get("refdomain") != "py" or ("." in target and not target.startswith(PACKAGE + ".")):
        return None
    domain = env.get_domain("py")
    objtypes = domain.objtypes_for_role(node["reftype"]) or []
    # Aliased entries (a class's canonical name, added by autodoc) would only count one object twice.
    objects = {name: entry.objtype for name, entry in domain.objects.items() if not entry.aliased}
    name = find_target(target, objtypes, objects)
    if name is None:
        return None
    entry = domain.objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def setup(app: Sphinx) -> dict:
    app.connect("missing-reference", resolve)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
