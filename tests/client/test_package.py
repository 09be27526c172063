"""The client distribution stands on its own: ``pip install ./clients`` brings
the client, ledger-verify and the core, and nothing of the server."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "pydantic",
    "jinja2",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(out),
            str(ROOT / "clients"),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("ledger_client-*.whl")
    return found


def test_the_wheel_holds_the_client_and_the_core_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.rsplit("/", 1)[0] for name in names if name.endswith(".py")}
    assert packages == {"ledger_client", "ledger/core"}
    metadata = next(n for n in names if n.endswith("METADATA"))
    requires = [
        line.split(":", 1)[1].strip().lower()
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert {r.split(">")[0].split("<")[0].split("=")[0] for r in requires} >= {
        "httpx",
        "cryptography",
        "rfc8785",
    }
    assert not [r for r in requires if r.startswith(SERVER_ONLY)]


def test_the_client_imports_without_any_server_package(tmp_path: Path) -> None:
    # Each server-only package made unimportable: an import of one fails loudly.
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in SERVER_ONLY)
    script = f"import sys; {blocked}; import ledger_client, ledger_client.verify, ledger_client.cli"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
