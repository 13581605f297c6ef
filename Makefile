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

.PHONY: install repro test test-fast bench clean lint ui flow

# Prefect: `make ui` serves the UI (state in .prefect/), `make flow` runs the DVC pipeline as a flow it shows.
PREFECT_PORT ?= 4200
PREFECT_URL := http://127.0.0.1:$(PREFECT_PORT)

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
	$(BIN)/python -m eat.orchestration.repro
	@$(BIN)/python -m eat.where

# pytest-xdist: TEST_WORKERS processes, a test file per worker at a time (its module fixtures built once), the
# slow end-to-end tests dealt out first (tests/conftest.py; --no-loadscope-reorder keeps that order, where xdist would
# deal the files with the most tests first and the one-test end-to-end file last); TEST_WORKERS=0 runs the suite in
# this process.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST)

test-fast: $(STAMP)   # the inner loop: every test but the slow end-to-end ones (marked slow, > 60 s each)
	$(BIN)/python -m pytest $(XDIST) -m "not slow"

# `make bench` runs every benchmark; `make bench latent` (or synth, preprocess, audio_features, generate) one of them
BENCHES := synth preprocess audio_features latent generate
bench: $(STAMP)
	$(BIN)/python -m eat.bench --out reports/bench $(filter $(BENCHES),$(MAKECMDGOALS))

$(BENCHES):
	@:

ui: $(STAMP)
	@echo "Prefect UI: $(PREFECT_URL)  (state in .prefect/, analytics off; Ctrl-C stops it). Then, in another shell: make flow"
	$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

flow: $(STAMP)
	PREFECT_API_URL=$(PREFECT_URL)/api $(BIN)/python -m flows $(if $(PROFILE),--profile $(PROFILE)) \
		$(foreach s,$(SET),-S '$(s)') $(if $(STAGES),--stages $(STAGES)) $(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS))

lint: $(STAMP)
	$(BIN)/ruff check eat stages flows metrics tests

# Share runs: `make push` sends the DVC-cached outputs of dvc.lock to the remote, `make pull` brings them into
# another clone of the same commit. The remote is chosen in one place, eat/orchestration/remote.py:
# EAT_DVC_REMOTE (a folder, a URL or a remote's name), else DVC's default remote (`dvc remote add -d --local`),
# else the folder ${XDG_DATA_HOME:-~/.local/share}/eat-dvc-remote. `python -m eat.orchestration.remote where` says which.
.PHONY: push pull
push: $(STAMP)
	$(BIN)/python -m eat.orchestration.remote push

pull: $(STAMP)
	$(BIN)/python -m eat.orchestration.remote pull

clean:
	rm -rf data/synth data/interim data/features reports/synth reports/preprocess reports/bench reports/latent reports/pca .pytest_cache .ray/session_*
	-$(BIN)/dvc gc --workspace --force 2>/dev/null

# Did the reproduction reproduce? `make verify` (after `make repro`) compares this run's metrics (working tree)
# with the committed ones (git HEAD) within the bands and the paper's orderings declared in configs/verify.yaml:
# a table of metric | committed | now | band | verdict, exit 1 when a conclusion flips or a metric leaves its band.
# `make seeds [N=3] [SEEDS="20231002 1 2"] [TARGETS="train_sync_expert ..."] [JOBS=1] [UPSTREAM=1]` runs the model
# stages (only them, on the committed data; UPSTREAM=1: their upstream too) at N seeds as DVC experiments
# (dvc exp run --queue -S seed=... --single-item, --run-all, exp show) and writes
# reports/seeds/table.md and table.json: each key metric's mean, min, max and pass/fail (configs/verify.yaml, seeds).
.PHONY: verify seeds
verify: $(STAMP)
	$(BIN)/python -m eat.orchestration.verify

seeds: $(STAMP)
	$(BIN)/python -m eat.orchestration.seeds $(if $(N),-n $(N)) $(if $(SEEDS),--seeds "$(SEEDS)") \
		$(if $(TARGETS),--targets "$(TARGETS)") $(if $(JOBS),--jobs $(JOBS)) $(if $(UPSTREAM),--with-upstream)
