# One task runner for people and CI. `make demo` and `make test` are the README's commands.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
# Installed packages come with their bytecode, as pip installs them for users; an
# environment that forbids writing .pyc files would make every start-up compile again.
export UV_COMPILE_BYTECODE := 1
unexport PYTHONDONTWRITEBYTECODE
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help demo test test-pythons lint format typecheck unit bench clean uv

help:
	@echo "make demo       run the example agent: crash, resume, wait, answer, replay (no server, no cloud)"
	@echo "make test       lint, type-check and run every test (starts the local services it needs)"
	@echo "make lint       ruff check + format check + the import contracts (layers, plugins)"
	@echo "make typecheck  mypy --strict"
	@echo "make unit       pytest only (PYTEST_ARGS='-k name' to select)"
	@echo "make test-pythons  the service-free tests on every other Python 3.12+ found here"
	@echo "make bench      benchmarks side by side with the peers (slow; not part of make test)"
	@echo "                QUICK=1 for a smoke run; BENCH_ARGS='--systems kitaru,dbos' to pick"

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

# Everything: the core, every plugin distribution and every extra (what the tests need).
.venv/.synced: uv pyproject.toml uv.lock */pyproject.toml
	$(UV) sync --locked --all-packages --all-extras
	@touch $@

# Just the core: what `pip install kitaru` gives a user (keeps anything already installed).
.venv/.synced-core: uv pyproject.toml uv.lock
	$(UV) sync --locked --inexact
	@touch $@

demo: .venv/.synced-core
	$(PY) examples/demo.py

lint: .venv/.synced
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache

format: .venv/.synced
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

typecheck: .venv/.synced
	.venv/bin/mypy

unit: .venv/.synced
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck
	bash scripts/test.sh $(PYTEST_ARGS)
	bash scripts/test-pythons.sh $(PYTEST_ARGS)

test-pythons: uv
	bash scripts/test-pythons.sh $(PYTEST_ARGS)

bench: .venv/.synced
	$(PY) -m benchmarks $(if $(filter-out 0,$(QUICK)),--quick,) $(BENCH_ARGS)

clean:
	rm -rf .venv .venv-py3* .mypy_cache .ruff_cache .pytest_cache .demo-home .test-services
