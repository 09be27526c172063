#!/usr/bin/env bash
# One command for a first look: SQLite under ./.ledger, the example ledger
# loaded, the server up; the URLs to open are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
exec .venv/bin/ledger demo "$@"
