# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Installs take the exact versions pinned in requirements/*.lock (written by `make lock`),
# with uv (itself pinned) for speed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
# Installs write bytecode (uv does not by default, and a machine that sets
# PYTHONDONTWRITEBYTECODE, as the development machine does, never writes it on import):
# without it every process compiles every module it imports from source (the twin took
# 4.2-5.0 s to import there, 1.6 s with bytecode).
UV := $(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode
PACKAGES := pipeline twin meters network hw_models
SCENARIO ?= scenarios/baseline.toml
OUT ?= out/baseline

.PHONY: run test bench gates golden lint lock calibrate clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(BIN)/uv requirements/run.lock pyproject.toml
	$(UV) -r requirements/run.lock
	$(UV) --no-deps -e .
	$(BIN)/python -m compileall -q $(PACKAGES)
	touch $@

$(VENV)/.installed-dev: $(BIN)/uv requirements/dev.lock pyproject.toml
	$(UV) -r requirements/dev.lock
	$(UV) --no-deps -e .
	$(BIN)/python -m compileall -q $(PACKAGES)
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/twin run $(SCENARIO) --out $(OUT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

# The tests on up to four cores, a file's tests on one (their module fixtures set up once);
# bench/ is timed and runs alone (`make bench`, `make gates`).
test: lint
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile

bench: $(VENV)/.installed-dev
	$(BIN)/pytest bench --benchmark-only -p no:cacheprovider -o testpaths=bench

# The quick subset of bench/ that CI runs: the ratio gates (tests marked `gate`).
gates: $(VENV)/.installed-dev
	$(BIN)/pytest bench -m gate -p no:cacheprovider -o testpaths=bench --benchmark-columns=min,median,rounds

# The golden KPIs of every shipped scenario (scenarios/golden/), two at a time.
golden: $(VENV)/.installed
	$(BIN)/twin golden --check --jobs 2

# Re-pin every dependency after a change to pyproject.toml (needs the registry).
lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -q -o requirements/run.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -q -o requirements/dev.lock

calibrate: $(VENV)/.installed
	$(BIN)/twin calibrate --out twin/data/cost_model.json

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .benchmarks .import_linter_cache
