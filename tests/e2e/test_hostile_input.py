"""Hostile input against a real ``ledger serve``: never a 500, never a dead connection.

A member name holding a lone surrogate (valid JSON: ``"\\ud800"`` is a legal
escape) has no UTF-8 form, so a problem document repeating it could not be
written; each place such a name can sit in a body is sent over one kept-alive
connection, which must answer 422 and then serve the next request. A client
that hangs up halfway through its body is no server error: it is audited as
a disconnect and leaves no traceback in the server's log.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import position
from tests.e2e.test_intake_worker import descendants
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

LEDGER = "talks"
EVENTS = f"/v1/ledgers/{LEDGER}/events"
LONE = "\ud800"
# What a problem document says for a name holding U+D800: the six characters \ud800.
ESCAPED = "\\ud800"


def _with_name_in(where: str) -> Any:
    event: dict[str, Any] = position()
    if where == "top":
        event[LONE] = 1
    elif where == "data":
        event["data"] = {**event["data"], LONE: 1}
    elif where == "terms":
        event["data"] = {**event["data"], "terms": {LONE: 1}}
    return event


def _serve(database_url: str, tmp_path: Path) -> tuple[ServerProcess, Path]:
    audit = tmp_path / "audit.jsonl"
    server = ServerProcess(
        database_url=database_url,
        data_dir=tmp_path,
        env={"LEDGER_AUDIT_LOG": str(audit)},
    )
    created = httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER})
    assert created.status_code == 201, created.text
    return server, audit


def _start_the_intake_worker(server: ServerProcess) -> int:
    """Append large batches until the worker runs, and one more, which it parses;
    the ledger's size after."""
    body = json.dumps([position(party="UA") for _ in range(300)]).encode()
    assert len(body) > 64 * 1024
    deadline = time.monotonic() + 60
    appended = 0
    while True:
        answer = httpx.post(
            f"{server.url}{EVENTS}",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        appended += 300
        if len(descendants(server.pid)) >= 2 or time.monotonic() > deadline:
            break  # the forkserver and the worker it forked
        time.sleep(0.2)
    assert len(descendants(server.pid)) >= 2, "no intake worker was started"
    answer = httpx.post(
        f"{server.url}{EVENTS}", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 201, answer.text
    return appended + 300


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> Any:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response, response.read()


def test_a_lone_surrogate_in_a_member_name_is_refused_and_the_connection_kept(
    database_url: str, tmp_path: Path
) -> None:
    big_batch = [position(party="US") for _ in range(400)]
    big_batch[250] = _with_name_in("data")
    cases: list[tuple[str, str, Any, str]] = [
        ("top level", EVENTS, _with_name_in("top"), ESCAPED),
        ("data", EVENTS, _with_name_in("data"), f"data.{ESCAPED}"),
        ("data.terms", EVENTS, _with_name_in("terms"), f"data.terms.{ESCAPED}"),
        ("a batch item", EVENTS, [position(), _with_name_in("top")], f"[1].{ESCAPED}"),
        ("a body over 64 KiB", EVENTS, big_batch, f"[250].data.{ESCAPED}"),
        ("a new ledger", "/v1/ledgers", {"name": "other", LONE: True}, ESCAPED),
        ("a repeated name", EVENTS, None, f"data.{ESCAPED}"),
    ]
    server, _ = _serve(database_url, tmp_path)
    try:
        size = _start_the_intake_worker(server)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.connect()
        sock = connection.sock
        for name, path, value, field in cases:
            if value is None:  # json.dumps cannot write one name twice
                body = json.dumps(_with_name_in("data")).encode()
                body = body.replace(b'"data": {', b'"data": {"\\ud800": 0, ', 1)
            else:
                body = json.dumps(value).encode()  # ensure_ascii: \ud800 as an escape
            assert b"\\ud800" in body
            if name == "a body over 64 KiB":
                assert len(body) > 64 * 1024
            response, raw = _post(connection, path, body)
            assert response.status == 422, (name, raw)
            assert response.getheader("Content-Type") == "application/problem+json", name
            problem = json.loads(raw)
            assert problem["field"] == field, (name, problem)
            assert ESCAPED in problem["detail"], (name, problem)
            # The same connection serves the next request.
            connection.request("GET", f"/v1/ledgers/{LEDGER}/head")
            follow = connection.getresponse()
            assert follow.status == 200, (name, follow.read())
            assert json.loads(follow.read())["size"] == size, name
            assert connection.sock is sock, f"{name}: the server closed the connection"
        connection.close()
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-5000:]


def _audit_lines(audit: Path, route: str, *, wait: float = 10.0) -> list[dict[str, Any]]:
    """The audit lines of ``route`` other than its successes, once there are some."""
    deadline = time.monotonic() + wait
    while True:
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        found = [line for line in lines if line["route"] == route and line["status"] >= 400]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _hang_up_mid_body(port: int, path: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n".encode()
            + b'[{"type":"position.stated","occurred_at":'
        )
        time.sleep(0.2)  # the server is now waiting for the rest


def test_a_client_that_hangs_up_mid_body_is_audited_as_a_disconnect(
    database_url: str, tmp_path: Path
) -> None:
    server, audit = _serve(database_url, tmp_path)
    try:
        for path in (EVENTS, "/v1/ledgers"):
            _hang_up_mid_body(server.port, path)
        appends = _audit_lines(audit, EVENTS)
        creations = _audit_lines(audit, "/v1/ledgers")
        # The server still answers, and wrote nothing.
        head = httpx.get(f"{server.url}/v1/ledgers/{LEDGER}/head")
        assert head.json()["size"] == 0
    finally:
        server.stop()
    for lines in (appends, creations):
        assert len(lines) == 1, lines
        (line,) = lines
        assert line["outcome"] == "disconnected", line
        assert line["status"] == 499, line
    log = server.log_path.read_text()
    assert "Traceback" not in log, log
    assert "ERROR" not in log and "unhandled" not in log, log
