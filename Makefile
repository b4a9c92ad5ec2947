# TraceChain: `make run` starts the local consortium, `make test` runs the whole suite.
# Both set up what is missing first: the virtualenv, pinned Python and npm packages, Debian packages.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
SYS_STAMP := .tracechain-system-packages

.PHONY: setup run test lint bench compile clean

setup: $(PY_STAMP) $(NPM_STAMP) $(SYS_STAMP)

$(PY_STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SYS_STAMP): scripts/install-system-packages.sh
	bash scripts/install-system-packages.sh
	touch $@

run: setup
	$(VENV)/bin/tracechain up

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) bench/run.py

compile: setup
	$(PY) scripts/compile_contracts.py

clean:
	rm -rf $(VENV) node_modules $(SYS_STAMP)
