#!/usr/bin/env bash
# The benchmark suite: fresh ledgers, each figure beside an in-run baseline.
# Usage: scripts/bench.sh [proofs ...] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
exec .venv/bin/python -m bench "$@"
