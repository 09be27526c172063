#!/usr/bin/env bash
# Creates .venv (once) and installs the project into it whenever
# pyproject.toml changes. Usage: scripts/bootstrap.sh [EXTRAS]  (e.g. "dev")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $python" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras:-base}"
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing the project${extras:+ [$extras]} into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  target="."
  [ -n "$extras" ] && target=".[$extras]"
  .venv/bin/python -m pip install -q -e "$target"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
