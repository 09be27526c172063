"""The core stays pure: importing every ``ledger.core`` module pulls in no web,
database or validation framework, so the offline verifier can ship it alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ["fastapi", "sqlalchemy", "starlette", "jsonschema", "pydantic"]

_PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import ledger.core
    modules = sorted(
        info.name for info in pkgutil.walk_packages(ledger.core.__path__, "ledger.core.")
    )
    for name in modules:
        importlib.import_module(name)
    loaded = sorted({m.split(".")[0] for m in sys.modules})
    print(json.dumps({"modules": modules, "loaded": loaded}))
    """
)


def _import_all_core_modules() -> dict[str, list[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, list[str]] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_importing_every_core_module_loads_no_framework() -> None:
    result = _import_all_core_modules()
    # The discovery found the modules the format contract lives in.
    for expected in ("canonical", "chain", "errors", "hashing", "jsonvalues", "records", "times"):
        assert f"ledger.core.{expected}" in result["modules"]
    leaked = sorted(set(FORBIDDEN) & set(result["loaded"]))
    assert leaked == [], f"ledger.core imports {leaked}"
