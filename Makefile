# OrderChat — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./orderchat-data
PORT ?= 8000
# Test workers: one per core by default.
TEST_WORKERS ?= 2
WEB := src/orderchat/web

.PHONY: run cluster test lint unit browser fuzz screenshots bench install install-test system-deps cluster-deps node-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test system-deps node-deps

## The browser app's formatter and linter (prettier, eslint), at the versions the
## lockfile pins. npm ci runs only when node_modules is missing or older than the lockfile.
node_modules/.package-lock.json: package-lock.json package.json | system-deps
	npm ci --no-audit --no-fund
	touch $@

node-deps: node_modules/.package-lock.json

## Debian packages the tests need, installed only when missing: libmagic for
## upload type checks, Chromium for the browser tests (Playwright drives it)
## a CJK font so that its screenshots and the dossier's PDF show Chinese (poppler-utils
## reads that PDF back in the tests), Node.js with npm for the
## browser app's formatter and linter, and PostgreSQL, Redis and nginx, which the
## suite, the benchmarks and the cluster start throwaway instances of (never the
## system services).
SYSTEM_PACKAGES := libmagic1 chromium fonts-wqy-microhei nodejs npm postgresql redis-server nginx coturn poppler-utils
# What installed packages provide: NodeSource's nodejs provides npm, and installing
# Debian's npm beside it would conflict.
PROVIDED := dpkg-query -W -f '$${Provides}\n' 2>/dev/null | tr ',' '\n' | sed 's/^ *//; s/ .*//' | sed '/^$$/d'
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || $(PROVIDED) | grep -qx "$$p" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: install
	$(BIN)/orderchat serve --demo --host 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

## What `make cluster` runs besides OrderChat, installed only when missing:
## PostgreSQL, Redis and nginx (their system services stay stopped; the
## script starts its own on loopback ports).
CLUSTER_PACKAGES := postgresql redis-server nginx
cluster-deps:
	@missing=""; for p in $(CLUSTER_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

## Several nodes on one PostgreSQL and one Redis behind nginx, with the demo shop
## (docs/deploy.md, section 13). CLUSTER_ARGS passes more options:
## make cluster CLUSTER_ARGS='--nodes 3 --fresh'.
CLUSTER_DIR ?= ./orderchat-cluster
CLUSTER_ARGS ?=
# The launchers (scripts/services.py) talk to PostgreSQL with psycopg, a test dependency.
cluster: $(VENV)/.installed-test cluster-deps
	$(BIN)/python scripts/cluster.py --port $(PORT) --data-dir $(CLUSTER_DIR) $(CLUSTER_ARGS)

lint: install-test
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	npx prettier --check $(WEB)
	npx eslint $(WEB)/assets/js $(WEB)/sw.js $(WEB)/widget.js

unit: install-test
	$(BIN)/pytest tests/unit -q

## The suite on both cores: each test starts its own server processes on free
## ports and data dirs, so the two workers share nothing but the one PostgreSQL
## and Redis the run starts (each server gets a database of its own). Storage
## tests run on SQLite and on PostgreSQL; ORDERCHAT_TEST_STORES=sqlite leaves
## PostgreSQL out. Each file goes whole to one worker, the longest first
## (tests/conftest.py): a module's servers start once.
test: install-test lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

browser: install-test
	$(BIN)/pytest tests/browser -q

## The fuzzers of `make test` (the HTTP API through its OpenAPI document, and the
## WebSocket's client frames), with many more examples each (FUZZ_EXAMPLES).
FUZZ_EXAMPLES ?= 100
fuzz: install-test
	ORDERCHAT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q \
		tests/integration/test_api_fuzz.py tests/integration/test_frame_fuzz.py

## Screenshots of the staff workspace and the customer page for the README.
screenshots: install-test
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

## Benchmarks against a real server, with their references measured in the same run.
bench: install-test
	ulimit -n $$(ulimit -Hn); $(BIN)/python -m bench; status=$$?; \
	$(BIN)/python -m bench.render; exit $$status

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
