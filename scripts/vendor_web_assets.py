"""Fetch MathJax 3, require.js and the Jupyter widgets HTML manager from the npm registry (no npm needed) and copy
the files the site serves into a static folder, so the built pages render math and saved widget state offline.

    python scripts/vendor_web_assets.py book/_static/vendor

Tarballs are checked against the registry's sha512 integrity hash and cached under _build/npm. Nothing here is
committed (see .gitignore).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
PACKAGES = {"mathjax": "3.2.2", "requirejs": "2.3.7", "@jupyter-widgets/html-manager": "1.0.15"}
# (package, path inside the package, destination relative to the vendor folder); a trailing "/" copies a folder.
FILES = [
    ("mathjax", "es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    ("mathjax", "es5/output/chtml/", "mathjax/output/chtml/"),
    ("mathjax", "es5/input/tex/", "mathjax/input/tex/"),
    ("mathjax", "es5/ui/", "mathjax/ui/"),
    ("mathjax", "es5/a11y/", "mathjax/a11y/"),
    ("requirejs", "require.js", "require.js"),
    ("@jupyter-widgets/html-manager", "dist/embed-amd.js", "widgets/embed-amd.js"),
]
WIDGET_FONTS = (".woff", ".woff2", ".ttf", ".eot", ".svg")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def package_tarball(name: str, version: str, cache: Path) -> Path:
    target = cache / f"{name.replace('/', '__')}-{version}.tgz"
    if target.exists():
        return target
    meta = json.loads(fetch(f"{REGISTRY}/{name}/{version}"))
    data = fetch(meta["dist"]["tarball"])
    algo, _, expected = meta["dist"]["integrity"].partition("-")
    if base64.b64encode(hashlib.new(algo, data).digest()).decode() != expected:
        raise RuntimeError(f"integrity check failed for {name}@{version}")
    cache.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def main(dest: Path, cache: Path = Path("_build/npm")) -> None:
    archives = {name: tarfile.open(package_tarball(name, v, cache)) for name, v in PACKAGES.items()}
    shutil.rmtree(dest, ignore_errors=True)
    for name, src, dst in FILES:
        prefix = "package/" + src
        members = [m for m in archives[name].getmembers() if m.isfile() and m.name.startswith(prefix)]
        if not members:
            raise RuntimeError(f"{src} not found in {name}")
        for m in members:
            out = dest / dst / m.name[len(prefix) :] if src.endswith("/") else dest / dst
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archives[name].extractfile(m).read())
    manager = archives["@jupyter-widgets/html-manager"]
    for m in manager.getmembers():  # icon fonts that embed-amd.js's stylesheet refers to by relative name
        if (
            m.isfile()
            and m.name.startswith("package/dist/")
            and m.name.count("/") == 2
            and m.name.endswith(WIDGET_FONTS)
        ):
            (dest / "widgets" / Path(m.name).name).write_bytes(manager.extractfile(m).read())
    (dest / ".stamp").write_text(json.dumps(PACKAGES))
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"vendored {', '.join(f'{k}@{v}' for k, v in PACKAGES.items())} into {dest} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "book/_static/vendor"))
