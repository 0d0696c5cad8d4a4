# Rampart: every target bootstraps .venv when it is missing or older than the dependency files,
# so a fresh clone needs nothing but `make run` / `make test`.
SHELL := /bin/bash
# The first interpreter that really runs and is 3.11+ (pyenv shims may exist but not run).
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= chains,twin,infra,dev
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= auto


.PHONY: all venv run demo test unit lint bench bench-count migrate openapi clean layers synth contracts

all: test

$(STAMP): pyproject.toml constraints.txt contracts/package-lock.json statemachines/package-lock.json
	@[ -n "$(PYTHON)" ] || { echo "Rampart needs Python 3.11 or newer on PATH" >&2; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
		-c constraints.txt -e ".[$(EXTRAS)]"
	npm ci --no-audit --no-fund --prefix contracts
	npm ci --no-audit --no-fund --prefix statemachines
	@touch $@

venv: $(STAMP)

## run: start the local twin on 127.0.0.1:$RAMPART_PORT (default 3000): gateway, Lambda, moto, PostgreSQL
run: venv
	$(BIN)/python -m infra.local

## demo: both BRL corridors against the twin at RAMPART_URL (started, then stopped, if nothing answers)
demo: venv
	$(BIN)/python -m infra.local.demo

## test: lint, then the whole suite (unit, integration, e2e, perf smoke) in parallel
test: venv lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

unit: venv
	$(BIN)/python -m pytest -q tests/unit

## lint: ruff + mypy
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: ledger throughput against pgbench TPC-B (.bench/ledger.json); API cold start, round trips, latency (.bench/api.json)
bench: venv
	$(BIN)/python -m tests.perf.bench_ledger
	$(BIN)/python -m tests.perf.bench_api
	$(BIN)/python -m tests.perf.bench_ramps

## bench-count: instructions per transfer, step by step inside the ledger functions (callgrind; needs valgrind)
bench-count: venv
	$(BIN)/python -m tests.perf.count_ledger single batch

## openapi: write openapi.json, the OpenAPI document merged from every API function (committed; a test checks it)
openapi: venv
	$(BIN)/python -m infra.local.openapi openapi.json

## migrate: apply the schema to DATABASE_URL (or the embedded PostgreSQL)
migrate: venv
	$(BIN)/python -m infra.local.migrate

## layers: build the Lambda dependency layers into build/layers/ (pip wheels for arm64/cp312, no Docker)
layers: venv
	$(BIN)/python -m infra.layers

## synth: synthesize every stage of the CDK app into cdk.out/ (an unacknowledged cdk-nag finding fails it)
synth: venv
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(BIN)/python infra/app.py

## contracts: recompile contracts/*.sol with the pinned solc into the committed EVM artifacts
contracts: venv
	node contracts/compile.mjs

clean:
	rm -rf $(VENV) .bench cdk.out build .data .pytest_cache .mypy_cache .ruff_cache contracts/node_modules statemachines/node_modules
