# The two commands of the README's quick start:
#   make run   - create .venv, install crm-graph, serve a generated demo business on the embedded store
#   make test  - create .venv, install with the dev extras, run the whole test suite
#   make web   - rebuild the explore page (api/static/explore) from web/explore's lock file
#   make fuzz  - the property tests of hostile input with new random cases (make test repeats)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: run test fuzz lint bench clean web

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

fuzz: $(VENV)/.installed-dev
	HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest tests/security tests/loaders/test_fuzz.py

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench load --customers 100000

clean:
	rm -rf $(VENV) build *.egg-info

web:
	cd web/explore && npm ci --no-audit --no-fund && node build.mjs
