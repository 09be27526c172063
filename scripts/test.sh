#!/usr/bin/env bash
# The whole test suite: lint, strict types, the import contracts, then pytest (extra args go to pytest).
# Storage tests also run on PostgreSQL when LEDGER_TEST_POSTGRES_URL is set.
# pytest runs one worker per core, a test file per worker at a time (its
# module fixtures, real servers, are started once); "-n 0" runs serially.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== import contracts (docs/architecture.md)"
.venv/bin/lint-imports
echo "== pytest${LEDGER_TEST_POSTGRES_URL:+ (SQLite and PostgreSQL)}"
exec .venv/bin/pytest --numprocesses auto --dist loadfile "$@"
