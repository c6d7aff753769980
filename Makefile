# The two commands of the README's quick start:
#   make run   - create .venv, install crm-graph, serve a generated demo business on the embedded store
#   make test  - create .venv, install with the dev extras, run the whole test suite
#                (the Neo4j variants too when NEO4J_URI is set)
#   make test-all - the same on both engines: starts ../shared/neo4j for the run (.ci/with-neo4j)
#   make fuzz  - the property tests of hostile input with new random cases (make test repeats)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run test test-all fuzz lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/crm-graph serve --demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check api graph analytics loaders tests bench
	$(BIN)/ruff format --check api graph analytics loaders tests bench
	$(BIN)/python -m pytest

test-all:
	.ci/with-neo4j $(MAKE) test

fuzz: $(VENV)/.installed-dev
	HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest tests/security tests/loaders/test_fuzz.py

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench load --customers 100000

clean:
	rm -rf $(VENV) build *.egg-info
