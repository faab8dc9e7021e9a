# Quick start: `make demo` runs a simulated school week through the real pipeline;
# `make test` runs the whole suite (lint, types, schema, unit and real-server tests).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bootstrap lint compile unit clean

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(BIN)/lordi demo $(DEMO_ARGS)

lint: bootstrap
	@bash scripts/bootstrap.sh --test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lordi-collector schema --check

# The collector's hot modules compiled with mypyc, as a server installs them
# (collector/compiled.py; nothing to do when they match their sources)
compile: bootstrap
	@bash scripts/bootstrap.sh --test
	$(BIN)/python scripts/compile.py

test: lint compile
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build
	find collector -name '*.so' -delete
	rm -f collector/_compiled.json
