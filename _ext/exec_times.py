"""Sphinx extension: ``{exec-time}`docname``` writes the seconds a notebook page took to execute in this build.

The instructor page quotes each chapter's run time next to its lesson plan, and the numbers must be measured, not
typed. myst-nb records each executed page's run time in its per-document metadata (the data behind
``{nb-exec-table}``); a post-transform replaces each role with that number once every page has been read, and the
page is marked like one holding an execution table, so myst-nb rewrites it when a notebook is re-executed.
"""

from __future__ import annotations

import posixpath

from docutils import nodes
from myst_nb.ext.execution_tables import METADATA_KEY
from myst_nb.sphinx_ import NbMetadataCollector
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxRole

LOGGER = logging.getLogger(__name__)


class exec_time(nodes.Inline, nodes.TextElement):
    """Placeholder for a page's execution time; ``target`` is the docname."""


class ExecTimeRole(SphinxRole):
    def run(self):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(self.env.docname), self.text.strip()))
        NbMetadataCollector.set_doc_data(self.env, self.env.docname, METADATA_KEY, True)
        return [exec_time(self.rawtext, "", target=target)], []


class ExecTimeTransform(SphinxPostTransform):
    default_priority = 8  # with myst-nb's execution table, before references are resolved

    def run(self, **kwargs) -> None:
        data = NbMetadataCollector.get_doc_data(self.env)
        for node in list(self.document.findall(exec_time)):
            runtime = (data.get(node["target"], {}).get("exec_data") or {}).get("runtime")
            if runtime is None:
                LOGGER.warning(f"exec-time: no execution time for {node['target']!r}", location=node)
                text = "–"
            else:
                text = f"{runtime:.0f}"
            node.replace_self(nodes.Text(text))


def setup(app: Sphinx) -> dict:
    app.add_node(exec_time)
    app.add_role("exec-time", ExecTimeRole())
    app.add_post_transform(ExecTimeTransform)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
