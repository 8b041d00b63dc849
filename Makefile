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

.PHONY: install system-deps plots-assets demo test test-slow test-slurm lint repro dvc-demo wiring \
	pull clean

install: system-deps $(STAMP) plots-assets

# The virtualenv is rebuilt when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# System packages, installed with apt when run as root (else the command is printed):
#   espeak-ng  the voice for `predict.py --speak` and for the transcription tests
#   chromium   headless browser for the offline `dvc plots` rendering test
#   npm        fetches Vega for the offline `dvc plots show` template (make plots-assets)
# A held apt lock (waited for up to 60 s), no network or any apt failure only warns:
# the Python install goes on without them.
APT_PACKAGES := espeak-ng chromium npm
APT := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 -qq
system-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: optional system packages missing:$$missing"; \
	  echo "      install them with: sudo apt-get install$$missing"; \
	  exit 0; \
	fi; \
	echo "Installing system packages with apt-get:$$missing"; \
	echo "  (espeak-ng: voice for --speak; chromium: plot rendering test; npm: offline Vega)"; \
	if $(APT) update && $(APT) install -y$$missing >/dev/null; then \
	  echo "installed:$$missing"; \
	else \
	  echo "warning: apt-get could not install$$missing (apt lock held by another process,"; \
	  echo "         no network or no such package); continuing with the Python install."; \
	  echo "         Later: apt-get install$$missing"; \
	fi

# Vega, Vega-Lite and Vega-Embed from npm, inlined into the template that .dvc/config's
# plots.html_template names, so `dvc plots show` renders offline (CDN fallback without npm).
plots-assets: $(STAMP)
	$(BIN)/python -m ser.plots

demo: install
	snakemake --cores $(CORES)
	@echo "Report: $(abspath reports/report.html)"

test: install
	$(BIN)/pytest; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

# Whole-pipeline tests (Snakemake and DVC on the tiny demo); CI runs them as a second step.
test-slow: install
	$(BIN)/pytest -m slow; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

# The tiny pipeline on a single-node SLURM cluster (scripts/slurm_local.sh; installs
# slurm-wlm and munge with apt-get as root) against a local run, byte for byte.
test-slurm: install
	$(BIN)/pytest -m slurm; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

lint: install
	$(BIN)/ruff check ser scripts tests benchmarks predict.py
	snakemake --lint

# `dvc repro`, after checking params.yaml and the corpus roots and updating dvc.yaml:
# DVC deletes a stage's outputs before running it, so a bad value must stop it first.
repro: install
	$(BIN)/python -m ser.workflow.wiring repro

# The same pipeline through DVC instead of Snakemake; then Snakemake records DVC's work
# (snakemake -n has nothing to do afterwards).
dvc-demo: install
	$(BIN)/python -m ser.workflow.wiring repro
	$(BIN)/python -m ser.workflow.wiring adopt
	dvc metrics show

# Regenerate dvc.yaml from the Snakefile (after editing rules or params.yaml lists).
wiring:
	$(BIN)/python -m ser.workflow.wiring write

# Fresh clone: restore DVC-tracked data; pipeline outputs never pushed are rebuilt instead.
pull:
	dvc pull --allow-missing

clean:
	rm -rf data/demo data/manifests data/features data/splits models metrics reports logs .snakemake
