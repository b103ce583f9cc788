# The two commands of the README:
#   make book   set everything up, then run the main job (executes the book on the CPU profile, builds the HTML)
#   make test   set everything up, then run the whole test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := dataset-fashion-mnist ufoai-textures opencv-doc mate-backgrounds plasma-workspace-wallpapers chromium

.PHONY: book test setup system-data clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Offline data sets ship as Debian packages, and so does the headless Chromium that checks the built pages;
# install them when we can (root or sudo), else say how.
system-data:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq $$missing || (apt-get update -qq && apt-get install -y -qq $$missing)) >/dev/null; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: could not install $$missing; data sets that need them will say how to get them"; fi; \
	fi

book: setup system-data
	$(BIN)/sdr book --profile cpu

# Unit tests; every chapter under nbval (its defaults are the cpu profile); the -W HTML build of the
# notebooks as committed (papermill's outputs); then each built page rendered in headless Chromium.
test: setup system-data
	OMP_NUM_THREADS=2 $(BIN)/pytest -q tests --ignore=tests/test_book_pages.py
	OMP_NUM_THREADS=2 $(BIN)/pytest -q --nbval-lax --nbval-current-env book/
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/pytest -q tests/test_book_pages.py

clean:
	rm -rf _build .pytest_cache
