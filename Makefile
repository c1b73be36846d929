# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/baseline.toml
OUT ?= out/baseline

.PHONY: run test bench lint calibrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/twin run $(SCENARIO) --out $(OUT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(VENV)/.installed-dev
	$(BIN)/pytest bench --benchmark-only -p no:cacheprovider -o testpaths=bench

calibrate: $(VENV)/.installed
	$(BIN)/twin calibrate --out twin/data/cost_model.json

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .benchmarks
