"""ledger-verify against a real server, before and after tampering the database."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from clients.verify_chain import main as verify_main
from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow
LEDGER = "audit"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url=database_url, data_dir=tmp_path)
    httpx.post(f"{process.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    events = [position(stance=s) for s in ["oppose", "demand", "offer", "reject", "support"] * 2]
    httpx.post(f"{process.url}/v1/ledgers/{LEDGER}/events", json=events).raise_for_status()
    yield process
    process.stop()


def verify(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object]]:
    code = verify_main(["server", server.url, "--ledger", LEDGER, "--json"])
    return code, json.loads(capsys.readouterr().out)


def tamper(database_url: str, seq: int, old: bytes, new: bytes) -> None:
    """What an attacker with database access does: drop the guard, edit a record."""
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER records_no_update"))
        else:
            conn.execute(sa.text("DROP TRIGGER records_append_only ON records"))
        row = conn.execute(
            sa.text("SELECT canonical FROM records WHERE seq = :seq"), {"seq": seq}
        ).one()
        edited = bytes(row.canonical).replace(old, new)
        assert edited != bytes(row.canonical)
        conn.execute(
            sa.text("UPDATE records SET canonical = :c WHERE seq = :seq"), {"c": edited, "seq": seq}
        )
    engine.dispose()


def test_an_untouched_ledger_verifies(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = verify(server, capsys)
    assert code == 0 and result["valid"] is True and result["checked"] == 10


def test_an_edited_middle_record_is_caught_at_the_next_link(
    server: ServerProcess, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(database_url, 5, b'"stance":"support"', b'"stance":"oppose"')
    code, result = verify(server, capsys)
    assert code == 1 and result["valid"] is False
    assert result["seq"] == 6  # record 5 still parses; its successor's prev no longer matches


def test_an_edited_last_record_is_caught_by_the_stated_head(
    server: ServerProcess, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(database_url, 10, b'"stance":"support"', b'"stance":"demand"')
    code, result = verify(server, capsys)
    assert code == 1 and result["seq"] == 10


def test_a_non_canonical_record_is_named(
    server: ServerProcess, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(database_url, 3, b'"seq":3', b'"seq": 3')
    code, result = verify(server, capsys)
    assert code == 1 and result["seq"] == 3 and "canonical" in str(result["reason"])


def test_an_unreachable_server_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = verify_main(["server", "http://127.0.0.1:9", "--ledger", LEDGER, "--timeout", "2"])
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_client_imports_only_the_core_httpx_cryptography_and_rich() -> None:
    probe = (
        "import sys, clients.verify_chain\n"
        "bad = {'fastapi', 'sqlalchemy', 'starlette', 'jsonschema', 'pydantic', 'typer'}\n"
        "print(sorted(bad & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
