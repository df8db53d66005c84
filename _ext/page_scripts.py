"""Sphinx extension: each page loads each script once.

sphinx-thebe adds its inline configuration (``const THEBE_JS_URL = ...``) on every ``env-before-read-docs``, which
Jupyter Book fires more than once per build, so pages carry the same ``const`` declarations twice and the browser
reports a SyntaxError on every page. On ``html-page-context``, after the other extensions, this drops a script that repeats an earlier one (same
file, or same inline body), keeping the first, in order.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _key(script) -> tuple:
    # the same file or inline body, whatever priority each copy was added with
    return (str(script.filename or ""), tuple(sorted(script.attributes.items())))  # inline: None or ""


def drop_repeated_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", drop_repeated_scripts, priority=900)  # after the extensions that add scripts
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
