# The two commands of the README:
#   make run    install into .venv; validate, test and list runbooks/; dry-run one runbook,
#               recorded in the default SQLite store; then serve, post an alert, follow its run
#   make test   lint (ruff), type-check (mypy runner/) and run the test suite (pytest)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install run test bench clean

$(BIN)/runbook: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/runbook

run: install
	$(BIN)/runbook validate --check-codeowners runbooks/
	$(BIN)/runbook test runbooks/
	$(BIN)/runbook list
	$(BIN)/runbook db upgrade
	$(BIN)/runbook run disk-full-cleanup --param host=web-1 --param log_dir=/tmp/runbook-runner-demo --env staging --dry-run --yes
	$(BIN)/runbook runs --limit 5
	RUNBOOK=$(BIN)/runbook bash docs/examples/alert-to-run.sh

test: install
	$(BIN)/ruff check runner tests bench docs
	$(BIN)/mypy runner
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/run_latency.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
