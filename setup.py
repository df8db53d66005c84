"""Build hook (the project is configured in pyproject.toml): the wheel carries the cached study results.

A downloaded chapter notebook runs outside the repository, so ``pip install lowdim`` must bring what the chapters
load: ``data/*.npz`` and ``data/checkpoints/*.pt`` are copied into the wheel as ``lowdim/_data``, where
:func:`lowdim.data_path` finds them. An editable install (``make``) reads ``data/`` in place instead, and the
``data/make_*.py`` scripts that regenerate the files stay in the repository.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = Path(__file__).resolve().parent / "data"
PATTERNS = ("*.npz", "checkpoints/*.pt")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "lowdim" / "_data"
        for pattern in PATTERNS:
            for source in sorted(DATA.glob(pattern)):
                destination = target / source.relative_to(DATA)
                self.mkpath(str(destination.parent))
                self.copy_file(str(source), str(destination))


setup(cmdclass={"build_py": BuildPyWithData})
