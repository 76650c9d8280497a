# The study's entry points. On a fresh machine:
#   make book   # environment + data + execute notebooks from committed artifacts + HTML
#   make test   # environment + data + ruff + pytest (unit, property, smoke, nbval)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= cpu
# data-parallel processes per training run (one per GPU; torchrun): make artifacts NPROC=4
NPROC ?= 1
STAMP := $(VENV)/.neurosens-installed
LINTED := lib tests benchmarks
# CPU matrix: these tests (models, training, attacks, defences, distributed) run a second
# time with oneDNN capped at its AVX2 kernels, so that nothing lands that only works with
# the AVX-512 ones (tests/core/test_onednn_workaround.py covers both ISAs by itself)
ISA_MATRIX := tests/models tests/core/test_runtime.py tests/train tests/attacks \
  tests/defences tests/core/test_distributed.py tests/data/test_imagenet200.py
export PYTHONHASHSEED := 0

.PHONY: help env data chromium test test-fast lint book notebooks html artifacts info clean

help:
	@echo "make book       build the Jupyter Book (_build/html) from committed artifacts"
	@echo "make test       ruff + pytest (unit, property, notebook smoke, nbval)"
	@echo "make artifacts  train missing models of PROFILE=$(PROFILE) on NPROC=$(NPROC) processes (slow; resumable)"
	@echo "make info       versions, device, datasets and artifacts"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# torchattacks' metadata would downgrade requests: install it without dependencies
	$(BIN)/python -m pip install -q --no-deps torchattacks==3.5.1
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

env: $(STAMP)

# Fashion-MNIST: data/ first, then Debian's dataset-fashion-mnist (installed here when we
# are root with apt), then torchvision's download (see lib/neurosens/data/images.py).
data: env
	@if [ ! -f data/FashionMNIST/raw/train-images-idx3-ubyte ] \
	    && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	    || echo "apt-get could not install dataset-fashion-mnist; trying torchvision's download"; \
	fi
	$(BIN)/python -m neurosens data

# Debian's Chromium and its WebDriver for the browser test of the built book
# (tests/book/test_browser.py), installed here when we are root with apt; without them
# that test skips and says so.
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "apt-get could not install chromium chromium-driver; the browser test will skip"; \
	  else \
	    echo "no /usr/bin/chromium or /usr/bin/chromedriver (apt-get install chromium chromium-driver); the browser test will skip"; \
	  fi; \
	fi

lint: env
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports  # the package's layers (pyproject.toml [tool.importlinter])

test: data lint chromium
	$(BIN)/python -m pytest tests -m "not browser"
	ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -q -p no:cacheprovider $(ISA_MATRIX)
	@if ls book/*.ipynb >/dev/null 2>&1; then \
	  NEUROSENS_ALLOW_TRAIN= $(BIN)/python -m pytest --nbval-lax \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider book; \
	fi
	# the built book in headless Chromium (tests/book/test_browser.py), on fresh HTML
	$(MAKE) html
	$(BIN)/python -m pytest -p no:cacheprovider tests/book/test_browser.py

test-fast: env
	$(BIN)/python -m pytest tests -m "not notebook and not browser" -x -q

notebooks: data
	NEUROSENS_ALLOW_TRAIN= $(BIN)/python -m neurosens book execute --profile $(PROFILE)

# MathJax, served with the pages (a reader offline, or this machine's Chromium, cannot reach
# its CDN): from the npm registry into _build/mathjax, which the build copies to _static
# (neurosens.book.build_info); without npm the pages load MathJax from its CDN
MATHJAX := _build/mathjax/mathjax/tex-chtml.js
$(MATHJAX):
	@mkdir -p _build/npm _build/mathjax
	@if command -v npm >/dev/null && npm install --silent --no-save --no-audit --no-fund \
	    --prefix _build/npm mathjax@3.2.2 >/dev/null 2>&1; then \
	  rm -rf _build/mathjax/mathjax && cp -r _build/npm/node_modules/mathjax/es5 _build/mathjax/mathjax; \
	else echo "npm could not install mathjax: the pages will load MathJax from its CDN"; fi

html: env $(MATHJAX)
	$(BIN)/python -m neurosens book pages
	$(BIN)/jupyter-book build . -W -n --keep-going

book: notebooks html

artifacts: data
	NEUROSENS_ALLOW_TRAIN=1 $(BIN)/python -m neurosens book artifacts --profile $(PROFILE) --nproc $(NPROC)

info: env
	$(BIN)/python -m neurosens info

clean:
	rm -rf _build .pytest_cache .ruff_cache
