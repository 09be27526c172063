"""What ``ledger serve`` logs as started by default, in a real process: uvicorn's
startup lines and one audit line per write, and no line per request (the
access log costs a third of the append throughput); ``LEDGER_ACCESS_LOG=true``
turns uvicorn's access log on."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

HEALTH_LINE = '"GET /healthz HTTP/1.1" 200'
APPEND_LINE = '"POST /v1/ledgers/talks/events HTTP/1.1" 201'


def serve_and_read_log(database_url: str, data_dir: Path, **env: str) -> list[str]:
    # LEDGER_LOG_LEVEL=info is the default; tests.servers otherwise quietens servers.
    server = ServerProcess(
        database_url=database_url, data_dir=data_dir, env={"LEDGER_LOG_LEVEL": "info", **env}
    )
    try:
        assert httpx.post(f"{server.url}/v1/ledgers", json={"name": "talks"}).status_code == 201
        appended = httpx.post(f"{server.url}/v1/ledgers/talks/events", json=position())
        assert appended.status_code == 201
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()
    return server.log_path.read_text().splitlines()


def audited_appends(lines: list[str]) -> list[int]:
    audit = [json.loads(line) for line in lines if line.startswith('{"time"')]
    return [line["seq"] for line in audit if line["action"] == "append"]


def test_by_default_each_write_is_audited_and_no_request_is_access_logged(
    database_url: str, tmp_path: Path
) -> None:
    lines = serve_and_read_log(database_url, tmp_path)
    assert any("Application startup complete" in line for line in lines)  # info level
    assert audited_appends(lines) == [1]
    assert not [line for line in lines if HEALTH_LINE in line or APPEND_LINE in line]


def test_the_access_log_is_a_setting(database_url: str, tmp_path: Path) -> None:
    lines = serve_and_read_log(database_url, tmp_path, LEDGER_ACCESS_LOG="true")
    assert audited_appends(lines) == [1]
    assert len([line for line in lines if HEALTH_LINE in line]) >= 1
    assert len([line for line in lines if APPEND_LINE in line]) == 1
