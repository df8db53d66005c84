"""lowdim outside the repository, as a reader who downloaded a chapter meets it.

Builds the project's wheel, installs it into a fresh virtual environment in a temporary folder from the pinned
wheels that `make` downloaded into .venv/wheelhouse (no index, no network, no pip configuration of this machine),
and runs a chapter notebook there with nbclient. The chapter (4) loads both cached results and checkpoints, so it
passes only if the wheel carries them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
CHAPTER = ROOT / "book" / "04_memorization.md"
sys.path.insert(0, str(ROOT / "scripts"))
from wheelhouse import requirements  # noqa: E402


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """(python of a fresh venv with the wheel installed, a working folder outside the repository)."""
    if not WHEELHOUSE.is_dir():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: `make test` downloads the pinned wheels there once")
    tmp = tmp_path_factory.mktemp("outside")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", ROOT]
    )
    wheel = next((tmp / "dist").glob("lowdim-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}
    _run([python, "-m", "pip", "install", "--quiet", wheel, *requirements()], env=env)
    work = tmp / "work"
    work.mkdir()
    return python, work


def _clean_env(python: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LOWDIM_DATA", "VIRTUAL_ENV")}
    return {**env, "PATH": f"{python.parent}{os.pathsep}{env['PATH']}", "JUPYTER_PREFER_ENV_PATH": "1"}


def test_wheel_carries_the_cached_results(outside):
    python, work = outside
    probe = textwrap.dedent("""
        import json, lowdim
        print(json.dumps([lowdim.__file__, str(lowdim.data_path("reproducibility_digits.npz")),
                          str(lowdim.data_path("checkpoints/digits_unet_n1024.pt"))]))
    """)
    package, npz, checkpoint = json.loads(_run([python, "-c", probe], cwd=work, env=_clean_env(python)).stdout)
    venv = str(python.parents[1])
    assert package.startswith(venv) and npz.startswith(venv) and checkpoint.startswith(venv)
    assert (
        "/_data/" in npz and Path(npz).stat().st_size == (ROOT / "data" / "reproducibility_digits.npz").stat().st_size
    )


def test_first_cell_installs_from_the_configured_repository():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for chapter in sorted((ROOT / "book").glob("[0-9][0-9]_*.md")):
        first = next(c for c in jupytext.read(chapter).cells if c.cell_type == "code")
        assert "import lowdim" in first.source and f"git+{url}" in first.source, chapter.name


def test_downloaded_chapter_runs_outside_the_repository(outside):
    python, work = outside
    notebook = work / CHAPTER.with_suffix(".ipynb").name
    nbformat.write(jupytext.read(CHAPTER), notebook)  # what the site's download menu offers, before execution
    runner = textwrap.dedent(f"""
        import nbclient, nbformat
        nb = nbformat.read({str(notebook)!r}, as_version=4)
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={{"metadata": {{"path": "."}}}}).execute()
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        print("cells", len(nb.cells), "errors", len(errors))
    """)
    out = _run([python, "-c", runner], cwd=work, env=_clean_env(python), timeout=900).stdout
    assert out.strip().endswith("errors 0"), out
