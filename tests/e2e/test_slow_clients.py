"""Clients that trickle their body, against a real server: each gets 408 once
its deadline's grain has passed, and nobody else waits for them."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

TIMEOUT = 1.0  # LEDGER_BODY_TIMEOUT for this server
GRAIN = 1.0  # ledger.api.body._GRAIN


def start_trickling(url: str) -> socket.socket:
    """An append whose headers promise a body that never comes in full."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(position()).encode()
    client = socket.create_connection((host, int(port)))
    client.sendall(
        b"POST /v1/ledgers/talks/events HTTP/1.1\r\n"
        b"Host: ledger\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]
    )
    return client


def read_status(client: socket.socket, seconds: float) -> int:
    client.settimeout(seconds)
    answer = b""
    while b"\r\n" not in answer:
        chunk = client.recv(4096)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_trickling_clients_get_408_and_the_others_are_served_meanwhile(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        database_url=database_url,
        data_dir=tmp_path,
        env={"LEDGER_BODY_TIMEOUT": str(TIMEOUT)},
    )
    stuck: list[socket.socket] = []
    try:
        assert httpx.post(f"{server.url}/v1/ledgers", json={"name": "talks"}).status_code == 201
        started = time.monotonic()
        stuck += [start_trickling(server.url) for _ in range(20)]
        with httpx.Client(base_url=server.url) as others:
            for _ in range(20):
                assert others.post("/v1/ledgers/talks/events", json=position()).status_code == 201
        assert time.monotonic() - started < TIMEOUT  # served while the 20 were stuck
        statuses = [read_status(client, TIMEOUT + GRAIN + 5) for client in stuck]
        waited = time.monotonic() - started
        assert statuses == [408] * 20
        assert TIMEOUT <= waited < TIMEOUT + GRAIN + 3
        head = httpx.get(f"{server.url}/v1/ledgers/talks/head").json()
        assert head["size"] == 20  # only the complete appends were recorded
    finally:
        for client in stuck:
            client.close()
        server.stop()
