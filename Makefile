# Cobalt: `make run` starts the whole product with demo data; `make test` runs the whole suite.
# Both create the virtual environment and install the pinned requirements first.
# tracker/wsgi.py and the Celery app default to production settings; `make run` names the local ones.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# The contract test's client generator lives in its own environment: it pins its own versions of
# pydantic, httpx, ruff and more, which must not move the project's.
CONTRACT_VENV := .venv-contract
CONTRACT_STAMP := $(CONTRACT_VENV)/.installed
OPENAPI_PYTHON_CLIENT := openapi-python-client==0.29.1
# The suite runs on PostgreSQL (pytest-django creates and drops test_cobalt).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cobalt
PORT ?= 8000
export PORT

.PHONY: run test test-fast lint bench bench-quick bench-load bench-workers bench-page-instructions venv run-venv contract-venv assets clean

venv: $(STAMP)

# `make run` installs only what running needs; `make test` adds the test and lint tools.
run-venv: $(RUN_STAMP)

$(RUN_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(RUN_STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP) $(RUN_STAMP)

contract-venv: $(CONTRACT_STAMP)

$(CONTRACT_STAMP): Makefile
	test -x $(CONTRACT_VENV)/bin/python || $(PYTHON) -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(CONTRACT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$(OPENAPI_PYTHON_CLIENT)"
	touch $(CONTRACT_STAMP)

# Links in the demo's staff emails and password resets open this server (override COBALT_SITE_URL for another).
run: export COBALT_SITE_URL ?= http://127.0.0.1:$(PORT)
run: run-venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py run_sweeps
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Cobalt on http://127.0.0.1:$(PORT)/login/  (sign in with a demo login above; API docs /api/docs/)"
	DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-tracker.settings.base} $(VENV)/bin/honcho start

# Two runs: the unit, page and browser tests over two processes (pytest-xdist, a test database each, its tables
# made from the models: --no-migrations, tests/conftest.py loads the built-in protocols), then the integration
# tests alone, since they start and stop shared services (Redis, Celery workers), on a database built by every
# migration.
test: venv contract-venv
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) -m pytest -n 2 -m "not integration" --no-migrations
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) -m pytest -m integration

# The tests that need no database (tests/conftest.py marks the others needs_db): seconds, no PostgreSQL.
test-fast: venv
	$(PY) -m pytest -m "not needs_db and not integration and not browser" -p no:cacheprovider -q

lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# `make bench`: every benchmark, bench/RESULTS.md (sweeps, calendar change, worklist, patient page, dashboard and
# lab POST against bare SQL) at 100,000 patients, then the load test on that database; `make bench-quick`: only
# bench/RESULTS.md, at 10,000 (minutes instead of hours on a small machine). `make bench-load`: wrk (Debian's
# package, `apt-get install wrk`) against gunicorn on the database the last results.py run left.
BENCH_PATIENTS ?= 100000
BENCH_REPLAN_PATIENTS ?= 20000
bench: venv
	$(PY) bench/bench_schedule.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/bench_sweep.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/bench_delivery.py
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/results.py --patients $(BENCH_PATIENTS) --replan-patients $(BENCH_REPLAN_PATIENTS)
	$(MAKE) bench-load
	$(MAKE) bench-workers

bench-quick: venv
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/results.py --patients 10000 --replan-patients 2000

# A first monitoring run of the bench database fanned out to two real Celery workers: time and each worker's peak RSS.
bench-workers: venv
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/bench_workers.py --workers 2

# The patient page's CPU instructions per request (callgrind: the same count on a busy machine), on the database the last
# results.py run left: to compare two versions of the page.
bench-page-instructions: venv
	@command -v valgrind >/dev/null || { echo "bench-page-instructions needs valgrind: apt-get install valgrind"; exit 1; }
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/page_instructions.py

bench-load: venv
	@command -v wrk >/dev/null || { echo "bench-load needs wrk: apt-get install wrk"; exit 1; }
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(PY) bench/load.py

clean:
	rm -rf var/ $(VENV) $(CONTRACT_VENV)

# Rebuild the vendored front-end files from package.json (needs Node and the npm registry; running
# and testing Cobalt do not): the NHS.UK design system compiled with Cobalt's additions, its icons and
# script, htmx, and axe-core for the browser tests' accessibility check.
STATIC := tracker/static
assets:
	npm ci --no-audit --no-fund
	rm -rf $(STATIC)/vendor && mkdir -p $(STATIC)/vendor/nhsuk/assets $(STATIC)/vendor/htmx $(STATIC)/cobalt tests/browser/vendor
	cp -r node_modules/nhsuk-frontend/dist/nhsuk/assets/images $(STATIC)/vendor/nhsuk/assets/
	cp node_modules/nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.js $(STATIC)/vendor/nhsuk/
	cp node_modules/nhsuk-frontend/LICENSE* $(STATIC)/vendor/nhsuk/ 2>/dev/null || true
	cp node_modules/htmx.org/dist/htmx.min.js $(STATIC)/vendor/htmx/
	cp node_modules/htmx.org/LICENSE $(STATIC)/vendor/htmx/
	npx sass --load-path=node_modules --style=compressed --no-source-map --quiet-deps tracker/assets/cobalt.scss $(STATIC)/cobalt/cobalt.css
	cp tracker/assets/cobalt.js $(STATIC)/cobalt/cobalt.js
	cp node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE tests/browser/vendor/
