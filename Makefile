# Two set-up commands: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned, so pip takes the CPU wheel and never a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/biojepa demo --out demo_output

test: $(STAMP)
	$(BIN)/ruff check src tests
	BIOJEPA_DATA_DIR=$${BIOJEPA_DATA_DIR:-$(SHARED_DATA)} $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

# BENCH_METHODS=baselines runs only the baselines and the ceiling (seconds instead of minutes).
# BENCH_JOBS: fits at a time in worker processes (auto: one per core, at most 8; Papalexi peaks under 1 GB).
BENCH_METHODS ?= all
BENCH_JOBS ?= auto
bench: $(STAMP)
	BIOJEPA_DATA_DIR=$${BIOJEPA_DATA_DIR:-$(SHARED_DATA)} $(BIN)/biojepa benchmark --dataset papalexi2021 \
		--split unseen_perturbation --seeds 1,2,3,4,5 --methods $(BENCH_METHODS) --jobs $(BENCH_JOBS) \
		--out benchmarks/results/papalexi2021

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
