"""Sphinx extension: every executed chapter is offered as a ``.ipynb`` in the page's download menu.

sphinx-book-theme copies a MyST notebook's executed ``.ipynb`` into ``_sources`` (and lists it in the download
menu) only while some launch button (Binder, Colab, ...) is configured; this book configures none, since none would
work. Before the theme builds its header buttons, this copies ``jupyter_execute/<page>.ipynb`` next to the page's
source and sets ``ipynb_source``, which is all the theme's download menu needs. The notebook's first cell installs
lowdim when it is missing, so the download runs outside the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx


def offer_notebook(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if doctree is None or not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", offer_notebook, priority=400)  # before the theme's buttons (501)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
