"""nbval over every chapter in _toc.yml: each MyST notebook is converted with jupytext and executed.

Chapters carry hidden assert cells (tagged ``remove-cell``) that check their figures' key numbers; cells have
no stored outputs, so ``--nbval-lax`` executes them and fails on any error. A chapter added to _toc.yml is
tested without editing this file.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                files.append(node[key])
        for value in node.values():
            if isinstance(value, (list, dict)):
                files += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += _toc_files(item)
    return files


def notebook_chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    paths = [ROOT / f"{f}.md" for f in _toc_files(toc)]
    return [p for p in paths if "kernelspec" in p.read_text().split("\n---", 1)[0]]


def test_no_directive_title_contains_a_backtick():
    # CommonMark forbids backticks in the info string of a backtick fence: "```{prf:theorem} A {cite}`x`" is
    # silently not a directive (its label then goes missing). Put roles in the body instead.
    for chapter in notebook_chapters():
        for number, line in enumerate(chapter.read_text().splitlines(), 1):
            fence = re.match(r"^(`{3,})\{[\w:-]+\}(.*)$", line)
            assert not (fence and "`" in fence.group(2)), f"{chapter.name}:{number}: {line}"


def test_toc_lists_the_part_one_chapters():
    names = {p.stem for p in notebook_chapters()}
    assert {"01_forward_process", "02_reverse_process", "03_training_tweedie"} <= names


@pytest.mark.parametrize("chapter", notebook_chapters(), ids=lambda p: p.stem)
def test_chapter_executes_and_its_checks_pass(chapter, tmp_path):
    notebook = jupytext.read(chapter)
    target = tmp_path / f"{chapter.stem}.ipynb"
    jupytext.write(notebook, target)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_PREFER_ENV_PATH": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=600",
            "--rootdir",
            str(tmp_path),
            str(target),
        ],
        cwd=chapter.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
