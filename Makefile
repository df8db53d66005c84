# make book   create .venv, install, fetch the web assets (from the npm registry, no npm needed), execute every chapter,
#             build _build/html (-W), then `make check-site` (static checks; every explorer moved in headless Chromium)
# make test   create .venv if needed, run the unit tests and nbval over every chapter in _toc.yml
# make serve  serve _build/html on http://localhost:8000 (widgets need http; math also works from file://)
# make lab    open the chapters in JupyterLab (.md files open as notebooks through jupytext, MyST rendered by
#             jupyterlab-myst; works as root in a container)
# make clean  remove build outputs (keeps .venv; `make distclean` removes it too)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
VENDOR := book/_static/vendor/.stamp

# Kernels from this environment win over a user-wide "python3" kernelspec.
export JUPYTER_PREFER_ENV_PATH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book check-site test lab serve clean distclean lint

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (lowdim)" >/dev/null
	$(BIN)/python scripts/wheelhouse.py $(VENV)/wheelhouse   # for tests/test_wheel.py: a fresh venv, no network
	rm -f $(VENV)/.installed-* && touch $@

$(VENDOR): scripts/vendor_web_assets.py
	$(PYTHON) scripts/vendor_web_assets.py book/_static/vendor

book: $(STAMP) $(VENDOR)
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(MAKE) check-site
	@echo "built _build/html; serve it with: make serve"

# The built site as a reader meets it: static checks, then every explorer moved in headless Chromium (skipped with
# a note when there is no /usr/bin/chromium, unless REQUIRE_BROWSER=1, as in .ci/run).
check-site: $(STAMP)
	$(BIN)/python scripts/check_site.py _build/html
	$(BIN)/python scripts/check_explorers.py _build/html

serve:
	$(BIN)/python -m http.server --directory _build/html 8000

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check lowdim tests scripts benchmarks _ext
	$(BIN)/ruff format --check lowdim tests scripts benchmarks _ext

# JupyterLab opens .md files with jupytext's notebook view by default (settings override inside .venv only).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
# jupyterlab-myst renders the chapters' MyST directives and roles in the notebook view. Jupyter refuses to start as
# root (a container's default user) unless told to.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[book,dev,lab]"
	mkdir -p $(dir $(LAB_OVERRIDES))
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' > $(LAB_OVERRIDES)
	$(BIN)/jupyter lab $(ALLOW_ROOT) --notebook-dir=. book/01_forward_process.md

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis book/_static/vendor .jupyter_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
