# The two commands of the README:
#   make run    install into .venv; validate, test and list runbooks/; dry-run a runbook; then
#               start a server, post an alert, follow the run it starts, resolve the alert
#               (docs/examples/first-run.sh; recorded in SQLite in the state directory)
#   make test   lint (ruff), type-check (mypy runner/) and run the test suite (pytest)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The lock: exact versions and hashes of the application, its dev tools and its build backend,
# compiled from pyproject.toml by pip-compile (`make lock`). requirements/app.txt is the
# application alone, for deployments.
LOCK   := requirements/dev.txt
COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
          --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)

.PHONY: install run test test-fast test-newest lock bench clean python-version

python-version:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	    echo "runbook-runner needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1)." \
	         "Try: make PYTHON=python3.11 ..." >&2; exit 2; }

$(BIN)/runbook: pyproject.toml $(LOCK) | python-version
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	@# setuptools' note that an editable install follows the working tree is not news to a developer
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet --no-deps \
	    --no-build-isolation -e .
	touch $@

install: $(BIN)/runbook

run: install
	RUNBOOK=$(BIN)/runbook bash docs/examples/first-run.sh

test: install
	$(BIN)/ruff check runner tests bench docs
	$(BIN)/mypy runner
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# The inner loop, under a minute: lint, types, the import contracts, the unit tests, the example
# catalogs and the plan of the house. `make test` stays the whole suite.
test-fast: install
	$(BIN)/ruff check runner tests bench docs
	$(BIN)/mypy runner
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q tests/unit tests/test_examples.py tests/test_architecture.py

# The same suite against the newest versions pyproject.toml allows, ignoring the lock, in a venv
# of its own: an upstream release that breaks us shows up here (CI's test-newest job) first.
test-newest: | python-version
	$(PYTHON) -m venv .venv-newest
	.venv-newest/bin/python -m pip install --quiet --upgrade pip
	.venv-newest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]'
	.venv-newest/bin/pip freeze --exclude-editable
	.venv-newest/bin/ruff check runner tests bench docs
	.venv-newest/bin/mypy runner
	.venv-newest/bin/lint-imports
	.venv-newest/bin/python -m pytest

# Refresh the lock after changing dependencies in pyproject.toml; `make lock UPGRADE=1` moves
# every pin to the newest allowed release. Commit both files.
lock: install
	$(COMPILE) --extra dev --all-build-deps -o requirements/dev.txt pyproject.toml
	$(COMPILE) --constraint requirements/dev.txt -o requirements/app.txt pyproject.toml

bench: install
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/run_latency.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .venv-newest .pytest_cache .mypy_cache .ruff_cache build *.egg-info
