"""The pinned packages a downloaded chapter needs outside the repository: lowdim's dependencies and its `notebook`
extra (what the chapters' first cell installs), plus ipykernel and nbclient to run a notebook.

    python scripts/wheelhouse.py DIR    # download them into DIR (make does this once, into .venv/wheelhouse)

tests/test_wheel.py installs from that folder into a fresh virtual environment, with no index and no network.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ("ipykernel", "nbclient")  # what runs a notebook, pinned in the `book` extra


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runner = [r for r in project["optional-dependencies"]["book"] if r.split("==")[0] in RUNNER]
    return project["dependencies"] + project["optional-dependencies"]["notebook"] + runner


def main(dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(dest)]
    subprocess.run(cmd + requirements(), check=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
