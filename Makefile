# Cobalt: `make run` starts the whole product with demo data; `make test` runs the whole suite.
# Both create the virtual environment and install the pinned requirements first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The contract test's client generator lives in its own environment: it pins its own versions of
# pydantic, httpx, ruff and more, which must not move the project's.
CONTRACT_VENV := .venv-contract
CONTRACT_STAMP := $(CONTRACT_VENV)/.installed
OPENAPI_PYTHON_CLIENT := openapi-python-client==0.29.1
# The suite runs on PostgreSQL (pytest-django creates and drops test_cobalt).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cobalt
PORT ?= 8000
export PORT

.PHONY: run test test-fast lint bench venv contract-venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

contract-venv: $(CONTRACT_STAMP)

$(CONTRACT_STAMP): Makefile
	test -x $(CONTRACT_VENV)/bin/python || $(PYTHON) -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(CONTRACT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$(OPENAPI_PYTHON_CLIENT)"
	touch $(CONTRACT_STAMP)

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py run_sweeps
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Cobalt on http://127.0.0.1:$(PORT)/  (API docs /api/docs/, admin /admin/; logins above)"
	$(VENV)/bin/honcho start

test: venv contract-venv
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) -m pytest

# The tests that need no database (tests/conftest.py marks the others needs_db): seconds, no PostgreSQL.
test-fast: venv
	$(PY) -m pytest -m "not needs_db and not integration and not browser" -p no:cacheprovider -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

bench: venv
	$(PY) bench/bench_schedule.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/bench_sweep.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/bench_delivery.py

clean:
	rm -rf var/ $(VENV) $(CONTRACT_VENV)
