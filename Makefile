# The two commands a new machine needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest processes for `make test` (pytest-xdist): the suite is CPU-bound and safe to split, each process having
# its own PostgreSQL schema and free ports. PYTEST_WORKERS=0 runs it in this one process.
PYTEST_WORKERS ?= 2

.PHONY: demo test lint typecheck format bench-sim migration soak

$(BIN)/pippin: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Pippin needs Python 3.11 or newer: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

demo: $(BIN)/pippin
	$(BIN)/python tools/demo.py

lint: $(BIN)/pippin
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

typecheck: $(BIN)/pippin
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The command soak (tests/soak): a thousand simulated devices, faults and SIGKILLs, on SQLite and PostgreSQL.
# PIPPIN_SOAK_DEVICES and PIPPIN_SOAK_SECONDS size it.
soak: $(BIN)/pippin
	PIPPIN_SOAK=1 $(BIN)/pytest -n 0 -s tests/soak $(PYTEST_ARGS)

format: $(BIN)/pippin
	$(BIN)/ruff check --fix src tests bench tools
	$(BIN)/ruff format src tests bench tools

# make migration MSG="what changed" REV=0002
migration: $(BIN)/pippin
	$(BIN)/python tools/new_migration.py "$(MSG)" $(REV)
