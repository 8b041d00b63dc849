# Two commands on a fresh machine (see README):
#   make demo   install everything, run the whole pipeline on the demo corpus
#   make test   install everything, run the test suite
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= $(shell nproc)
export KERAS_BACKEND := jax
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install system-deps demo test test-slow lint dvc-demo wiring pull clean

install: system-deps $(STAMP)

# The virtualenv is rebuilt when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# espeak-ng: the voice for `predict.py --speak` and for the transcription tests.
system-deps:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	  else \
	    echo "espeak-ng missing: run 'sudo apt-get install espeak-ng' (needed for --speak)"; \
	  fi; }

demo: install
	snakemake --cores $(CORES)
	@echo "Report: $(abspath reports/report.html)"

test: install
	$(BIN)/pytest; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

# Whole-pipeline tests (Snakemake and DVC on the tiny demo); CI runs them as a second step.
test-slow: install
	$(BIN)/pytest -m slow; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

lint: install
	$(BIN)/ruff check ser scripts tests benchmarks predict.py
	snakemake --lint

# The same pipeline through DVC instead of Snakemake; then Snakemake records DVC's work
# (snakemake -n has nothing to do afterwards).
dvc-demo: install
	dvc repro
	$(BIN)/python -m ser.wiring adopt
	dvc metrics show

# Regenerate dvc.yaml from the Snakefile (after editing rules or params.yaml lists).
wiring:
	$(BIN)/python -m ser.wiring write

# Fresh clone: restore DVC-tracked data; pipeline outputs never pushed are rebuilt instead.
pull:
	dvc pull --allow-missing

clean:
	rm -rf data/demo data/manifests data/features data/splits models metrics reports logs .snakemake
