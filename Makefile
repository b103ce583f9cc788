# The two commands of the README:
#   make book   set everything up, then run the main job (sync the notebooks from book/src, execute them on the
#               CPU profile, fold the parameters, build the HTML into _build/html)
#   make test   set everything up, then run the whole test suite
# Also: make html (build the HTML from the notebooks as they are: no execution), make setup, make clean.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Debian packages that hold the data the reference checkpoints were trained on: the one list,
# sdrlib/data/debian-packages.txt (one per line, # comments), which sdrlib.data.DEBIAN_PACKAGES and so the
# chapters' Colab install cell read too; and the headless Chromium of the page checks.
HASH := \#
DATA_DEBS := $(strip $(shell sed -e 's/$(HASH).*//' sdrlib/data/debian-packages.txt))
DEBS := $(DATA_DEBS) chromium

.PHONY: book test html setup system-data clean

setup: $(STAMP)

# A venv needs `python3 -m venv` with ensurepip: Debian and Ubuntu ship that separately (python3-venv).
$(BIN)/python:
	@command -v $(PY) >/dev/null || { echo "make: $(PY) not found: install Python 3.10 or later" \
	  "(Debian/Ubuntu: sudo apt-get install python3 python3-venv), or run make PY=/path/to/python3" >&2; exit 1; }
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "make: $(PY) is older than 3.10;" \
	  "run make PY=/path/to/python3.10-or-later" >&2; exit 1; }
	@$(PY) -c 'import ensurepip, venv' 2>/dev/null || { echo "make: '$(PY) -m venv' does not work here" \
	  "(no ensurepip). On Debian/Ubuntu: sudo apt-get install python3-venv (or python3.X-venv for your" \
	  "Python 3.X), then run make again" >&2; exit 1; }
	$(PY) -m venv $(VENV) || { rm -rf $(VENV); echo "make: '$(PY) -m venv $(VENV)' failed (Debian/Ubuntu:" \
	  "sudo apt-get install python3-venv)" >&2; exit 1; }

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Offline data sets ship as Debian packages, and so does the headless Chromium that checks the built pages:
# installed where apt-get exists and we are root (or have password-less sudo); otherwise we say what to install.
system-data:
	@if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then \
	  echo "note: no apt-get here. By hand, install: Chromium (for make test's page checks) and, for the" \
	       "data sets, Fashion-MNIST and the texture photographs of Debian's $(DATA_DEBS);" \
	       "'sdr data NAME' says where each data set is looked for (see README.md)"; \
	else \
	  missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -z "$$missing" ]; then :; \
	  elif [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq $$missing || (apt-get update -qq && apt-get install -y -qq $$missing)) >/dev/null; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: not root: sudo apt-get install" $$missing "(the data loaders say how to get each" \
	            "data set otherwise; see README.md)"; fi; \
	fi

book: setup system-data
	$(BIN)/sdr book --profile cpu

# Build the HTML from book/*.ipynb as they are (no execution), with MathJax shipped in _build/html/_static.
html: setup
	$(BIN)/sdr book --html

# Lint and format check (ruff, configured in pyproject.toml); unit tests (the book runner's included); every chapter under nbval (its defaults are the cpu profile); the -W
# HTML build of the notebooks as committed (papermill's outputs); then each built page rendered in headless
# Chromium with the network off (formulas must render from the shipped MathJax).
test: setup system-data
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	OMP_NUM_THREADS=2 $(BIN)/pytest -q tests --ignore=tests/test_book_pages.py
	OMP_NUM_THREADS=2 $(BIN)/pytest -q --nbval-lax --nbval-current-env book/
	$(BIN)/sdr book --html
	$(BIN)/pytest -q tests/test_book_pages.py

clean:
	rm -rf _build .pytest_cache
