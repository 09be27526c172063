#!/usr/bin/env bash
# The benchmark suite: fresh ledgers, each figure beside an in-run baseline.
# Usage: scripts/bench.sh [proofs|positions|export|verify|appends|readers ...] [--quick]
# (no suite: all of them; appends and readers also want PostgreSQL, LEDGER_BENCH_POSTGRES_URL)
#        scripts/bench.sh compare REV_BEFORE REV_AFTER [SUITE ...] [--rounds N] [--quick] [--same-harness]
# (both revisions' suites in interleaved rounds; see docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian) for HTTP latency figures" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi
exec .venv/bin/python -m bench "$@"
