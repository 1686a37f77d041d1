# Abscopal — two commands set everything up: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PATIENTS ?= 200
SEED ?= 20221231
DEMO_ARGS ?=

.PHONY: help venv demo test test-fast lint bench fuzz system-packages clean

help:
	@echo "make demo   build the virtualenv and a demo database (two sites, demo users), then serve the web app (DEMO_ARGS=\"--port 8080\")"
	@echo "make test   install what the tests need (virtualenv, PostgreSQL) and run the whole suite"
	@echo "make lint   ruff and mypy"
	@echo "make bench  the benchmarks behind docs/benchmarks.md (long)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/abscopal demo --patients $(PATIENTS) --seed $(SEED) $(DEMO_ARGS)

system-packages:
	@bash scripts/ensure-system-packages.sh

test: venv system-packages
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder -q

# SQLite only, no PostgreSQL: for a quick loop while developing.
test-fast: venv
	ABSCOPAL_TEST_POSTGRES=0 $(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder -q -x

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: venv system-packages
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

# The API fuzz at length (schemathesis, 200 examples per operation, every role; SQLite): outside `make test`.
fuzz: venv
	$(BIN)/python bench/web_fuzz.py --examples 200 --roles all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
