# The two commands of the README's quick start:
#   make run   - create .venv, install crm-graph, serve a generated demo business on the embedded store
#                (port: make run PORT=8001, or CRM_GRAPH_PORT=8001 make run; default 8000)
#   make test  - create .venv, install with the dev extras, lint, type-check (make typecheck),
#                run the whole test suite
#                (the Neo4j variants too when NEO4J_URI is set)
#   make test-all - the same on both engines: starts ../shared/neo4j for the run (.ci/with-neo4j)
#   make fuzz  - the property tests of hostile input with new random cases (make test repeats)
#   make lock  - pin every dependency again after pyproject.toml's ranges changed
#   make canary - the whole suite on the newest releases pyproject.toml's ranges allow
#   make web   - rebuild the browser pages' assets (api/static/graphiql, api/static/explore)
#                from web/graphiql's and web/explore's lock files (npm)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# The versions `make run` and `make test` install: every dependency pinned, tested together.
LOCK := requirements-lock.txt

.PHONY: run test test-all typecheck fuzz lint bench clean lock canary web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) install --quiet --constraint $(LOCK) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) install --quiet --constraint $(LOCK) -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/crm-graph serve --demo$(if $(PORT), --port $(PORT))

test: $(VENV)/.installed-dev
	$(BIN)/ruff check api graph analytics loaders tests bench
	$(BIN)/ruff format --check api graph analytics loaders tests bench
	$(MAKE) --no-print-directory typecheck
	$(BIN)/python -m pytest

test-all:
	.ci/with-neo4j $(MAKE) test

# mypy finds packages by folder, and the folders are installed under other names (crm_graph.api
# is api/): it reads them through links named as installed. Part of `make test`: strict on api,
# graph and loaders, the default checks on analytics. Each of the two runs keeps its cache in the
# virtualenv (one cache each: their options differ, and a shared one is rebuilt by every run), so
# a run after a small change re-checks little (both runs: ~100 s cold, ~6 s warm here).
TYPED := $(VENV)/typecheck
MYPY := MYPYPATH=$(TYPED) $(BIN)/mypy
typecheck: $(VENV)/.installed-dev
	rm -rf $(TYPED) && mkdir -p $(TYPED)/crm_graph
	for package in api graph loaders analytics; do ln -s $(CURDIR)/$$package $(TYPED)/crm_graph/; done
	$(MYPY) --cache-dir $(VENV)/mypy-cache/strict --strict \
		-p crm_graph.api -p crm_graph.graph -p crm_graph.loaders
	$(MYPY) --cache-dir $(VENV)/mypy-cache/analytics -p crm_graph.analytics

fuzz: $(VENV)/.installed-dev
	HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest tests/security tests/loaders/test_fuzz.py

web:
	cd web/graphiql && npm ci --no-audit --no-fund && npm run build
	cd web/explore && npm ci --no-audit --no-fund && node build.mjs

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench load --customers 100000

# uv resolves for every platform and Python the project supports (3.11-3.13) in one file.
lock: | $(BIN)/python
	$(PIP) install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--quiet --output-file $(LOCK)

# The newest releases the ranges allow, in a virtualenv of its own: what `make lock` would
# move to. Its result goes in each closing note; a failure here is a range to fix, not CI's.
canary:
	rm -rf .venv-canary
	$(PYTHON) -m venv .venv-canary
	.venv-canary/bin/python -m pip install --quiet --upgrade pip
	.venv-canary/bin/python -m pip install --quiet --upgrade -e '.[dev]'
	.venv-canary/bin/python -m pip list --format=freeze > .venv-canary/versions.txt
	.venv-canary/bin/python -m pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) .venv-canary build *.egg-info
