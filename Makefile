# OrderChat — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./orderchat-data
PORT ?= 8000

.PHONY: run test lint unit browser fuzz screenshots bench install install-test system-deps clean

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

install-test: $(VENV)/.installed-test system-deps

## Debian packages the tests need, installed only when missing: libmagic for
## upload type checks, Chromium for the browser tests (Playwright drives it)
## and a CJK font so that its screenshots show Chinese.
SYSTEM_PACKAGES := libmagic1 chromium fonts-wqy-microhei
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: install
	$(BIN)/orderchat serve --demo --host 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

lint: install-test
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

unit: install-test
	$(BIN)/pytest tests/unit -q

test: install-test lint
	$(BIN)/pytest -q

browser: install-test
	$(BIN)/pytest tests/browser -q

## The API fuzz of `make test`, with many more examples per operation (FUZZ_EXAMPLES).
FUZZ_EXAMPLES ?= 100
fuzz: install-test
	ORDERCHAT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/integration/test_api_fuzz.py -q

## Screenshots of the staff workspace and the customer page for the README.
screenshots: install-test
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

## Benchmarks against a real server, with their references measured in the same run.
bench: install-test
	ulimit -n $$(ulimit -Hn); $(BIN)/python -m bench; status=$$?; \
	$(BIN)/python -m bench.render; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
