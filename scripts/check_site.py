"""Check the built site: no raw MyST syntax leaked into the text, no asset loaded from another host, every chapter
page carries its figures and a saved widget, and the API page has an entry for every name of ``lowdim.__all__``.
Run by `make book` after the build; exits 1 on a problem."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

RAW_MYST = re.compile(r"\{(prf:\w+|py:\w+|exercise|solution|math|glue:?\w*|eq|cite|doc|code-cell)\}|^`{3,}\{", re.M)
SKIP = {"script", "style", "pre", "code", "textarea"}


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.text: list[str] = []
        self.remote: list[str] = []
        self.images = 0
        self.widget_views = 0
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag in SKIP:
            self.depth += 1
        if tag == "script" and (a.get("src") or "").startswith(("http:", "https:", "//")):
            self.remote.append(a["src"])
        if tag == "script" and a.get("type") == "application/vnd.jupyter.widget-view+json":
            self.widget_views += 1
        if tag == "link" and "stylesheet" in (a.get("rel") or "") and (a.get("href") or "").startswith(("http", "//")):
            self.remote.append(a["href"])
        if tag == "img" and (a.get("src") or "").endswith(".png"):
            self.images += 1

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.depth = max(0, self.depth - 1)

    def handle_data(self, data):
        if not self.depth:
            self.text.append(data)


def main(site: Path) -> int:
    problems = []
    for needed in ("vendor/mathjax/tex-chtml.js", "vendor/require.js", "vendor/widgets/embed-amd.js"):
        if not (site / "_static" / needed).is_file():
            problems.append(f"missing vendored asset _static/{needed}")
    chapters = sorted((site / "book").glob("[0-9][0-9]_*.html"))
    if not chapters:
        problems.append("no chapter pages found")
    for html in sorted(site.rglob("*.html")):
        page = Page()
        page.feed(html.read_text(encoding="utf-8"))
        rel = html.relative_to(site)
        for m in RAW_MYST.finditer("".join(page.text)):
            problems.append(f"{rel}: raw MyST syntax in the text: {m.group(0)!r}")
        for url in page.remote:
            problems.append(f"{rel}: asset loaded from another host: {url}")
        if html in chapters:
            if page.images == 0:
                problems.append(f"{rel}: no figure")
            if page.widget_views == 0:
                problems.append(f"{rel}: no saved widget")
            print(f"{rel}: {page.images} figures, {page.widget_views} widgets")
        if rel == Path("book/api.html"):
            import lowdim

            missing = [name for name in lowdim.__all__ if f"lowdim.{name}" not in page.ids]
            problems += [f"{rel}: no entry for lowdim.{name}" for name in missing]
            print(f"{rel}: {len(lowdim.__all__) - len(missing)} of {len(lowdim.__all__)} public names")
    if not (site / "book" / "api.html").is_file():
        problems.append("no API page (book/api.html)")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")))
