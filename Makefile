# The two commands of the README: `make serve` and `make test`. CI runs `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench bench-engine bench-profile bench-reads bench-lists bench-schedules clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# encodingcom-py3 ships the module encodingcom.encoding too: install it apart, for the
	# dialect tests that load it from there
	$(BIN)/pip install --quiet --no-deps --target $(VENV)/encodingcom-py3 encodingcom-py3==0.0.5
	touch $(STAMP)

## Run Legato: migrate the embedded database, load examples, serve API + workers on :8080
serve: $(STAMP)
	$(BIN)/legato serve

## Run the test suite (lint, types, architecture contracts, tests on SQLite and PostgreSQL)
test: $(STAMP)
	$(BIN)/ruff check legato tests bench examples
	$(BIN)/ruff format --check legato tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check legato tests bench examples
	$(BIN)/mypy

## The engine on SQLite and PostgreSQL next to its peers and the stores' limits; then reads
bench: bench-engine
	$(MAKE) bench-reads

## Latency, throughput, shapes, claims, HTTP starts, store limits and peers (BENCH_ARGS=--quick)
bench-engine: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## py-spy profiles of the latency and throughput runs on both stores (bench/results/profile-*)
bench-profile: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/profile.py $(PROFILE_ARGS)

## Status reads through HTTP at 1,000,000 runs: pollers, conditional reads, dialects, watchers
bench-reads: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/reads.py --json bench/results/reads.json

## A soak: one `legato serve` under a bounded mix for MINUTES (10); memory, fds, p99 flat
.PHONY: soak
MINUTES ?= 10
soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $(MINUTES)

clean:
	rm -rf $(VENV) legato.db legato.db-wal legato.db-shm .legato

bench-lists: $(STAMP)
	$(BIN)/python bench/lists.py

bench-dashboard: $(STAMP)
	$(BIN)/python bench/dashboard.py

## 10,000 schedules firing every minute: CPU per fire, fire time -> run created/started p50/p99
bench-schedules: $(STAMP)
	$(BIN)/python bench/schedules.py --json bench/results/schedules.json
