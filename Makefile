# Two commands for a new user: `make repro` (the whole pipeline) and `make test`.
# Everything installs into .venv inside the repo; state of DVC, Prefect and Ray stays in the repo too.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export RAY_USAGE_STATS_ENABLED := 0
export DVC_NO_ANALYTICS := 1
export MPLBACKEND := Agg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
PROFILE ?=

.PHONY: install repro test bench clean lint

$(STAMP): pyproject.toml constraints.txt
	@echo "Installing into $(VENV) from pyproject.toml + constraints.txt (first time: about 3 minutes, 7.7 GB)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade "pip>=24"
	$(BIN)/python -m pip install -qq -c constraints.txt -e ".[dev]"
	$(BIN)/python -m eat.setup_state
	@touch $(STAMP)

install: $(STAMP)

repro: $(STAMP)
ifneq ($(PROFILE),)
	$(BIN)/python -m eat.config apply configs/$(PROFILE).yaml
endif
	$(BIN)/dvc repro
	@$(BIN)/python -m eat.where

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m eat.bench --out reports/bench

lint: $(STAMP)
	$(BIN)/ruff check eat stages tests

clean:
	rm -rf data/synth data/interim data/features reports/synth reports/preprocess reports/bench .pytest_cache
	-$(BIN)/dvc gc --workspace --force 2>/dev/null
