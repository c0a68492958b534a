# Bulwark: `make run` starts the embedded default; `make test` runs every check CI runs.
PY := .venv/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/bulwark
REDIS_TEST_URL ?= redis://127.0.0.1:6379/14

.PHONY: setup run test lint test-sqlite test-postgres test-browser bench schema

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) manage.py standalone

lint: setup
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy config web alerts accounts artifacts audit playbooks core integrations common bench manage.py
	.venv/bin/lint-imports
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# The suite on the embedded default (SQLite, inline dispatch); end-to-end tests skip themselves.
test-sqlite: setup
	env -u DATABASE_URL -u REDIS_URL BULWARK_VAR_DIR=$(CURDIR)/var/test-sqlite .venv/bin/pytest -q -m "not browser"

# The suite on PostgreSQL + Redis, including end-to-end tests with real worker and scheduler processes.
test-postgres: setup
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) BULWARK_VAR_DIR=$(CURDIR)/var/test-postgres .venv/bin/pytest -q -m "not browser"

# The UI in Debian's chromium (apt-get install chromium) against `standalone` on SQLite;
# a screenshot of every page lands in var/browser-artifacts/.
test-browser: setup
	env -u DATABASE_URL -u REDIS_URL BULWARK_VAR_DIR=$(CURDIR)/var/test-browser BULWARK_BROWSER_TESTS=1 \
		BULWARK_BROWSER_ARTIFACTS=$(CURDIR)/var/browser-artifacts .venv/bin/pytest -q -m browser tests/browser

test: lint test-sqlite test-postgres test-browser

bench: setup
	DATABASE_URL=$(PG_URL)_bench REDIS_URL=redis://127.0.0.1:6379/13 $(PY) bench/engine.py
	DATABASE_URL=$(PG_URL)_bench REDIS_URL=redis://127.0.0.1:6379/13 $(PY) bench/intake.py
	DATABASE_URL=$(PG_URL)_bench REDIS_URL=redis://127.0.0.1:6379/13 $(PY) bench/approvals.py
	DATABASE_URL=$(PG_URL)_bench $(PY) bench/audit.py
	DATABASE_URL=$(PG_URL)_ui_bench $(PY) bench/ui.py

schema: setup
	$(PY) -m playbooks.schema
