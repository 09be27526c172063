"""Slow and silent clients, against a real server: one that trickles its body
gets 408 once its deadline's grain has passed; one that sends nothing, or
part of a request head, is closed once ``LEDGER_HEADER_TIMEOUT`` has passed;
connections beyond ``LEDGER_MAX_CONNECTIONS`` are refused at once; and
nobody else waits for any of them."""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import position
from tests.servers import ChildServer, ServerProcess, free_port

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


HEAD_TIMEOUT = 2.0  # LEDGER_HEADER_TIMEOUT for the servers below
SLOW_CLIENTS = 1000
HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: ledger\r\nX-Slow: "


@pytest.fixture
def descriptors() -> Iterator[None]:
    """Room for this process's side of the slow connections (the server raises
    its own limit to fit ``LEDGER_MAX_CONNECTIONS``)."""
    needed = SLOW_CLIENTS + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def healthz_p50_ms(client: httpx.Client, count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def until_closed(clients: list[socket.socket], seconds: float) -> dict[socket.socket, bytes]:
    """What each client received before the server closed it (clients still
    open after ``seconds`` are left out)."""
    received = {client: b"" for client in clients}
    closed: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for client in clients:
            client.setblocking(False)
            selector.register(client, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while len(closed) < len(clients) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                client = key.fileobj
                assert isinstance(client, socket.socket)
                try:
                    chunk = client.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[client] += chunk
                else:
                    selector.unregister(client)
                    closed[client] = received[client]
    return closed


def test_silent_and_half_sent_heads_are_closed_and_healthz_stays_fast(
    database_url: str, tmp_path: Path, descriptors: None
) -> None:
    server = ServerProcess(
        database_url=database_url,
        data_dir=tmp_path,
        env={"LEDGER_HEADER_TIMEOUT": str(HEAD_TIMEOUT)},
    )
    silent: list[socket.socket] = []
    half: list[socket.socket] = []
    try:
        with httpx.Client(base_url=server.url) as probe:
            before = healthz_p50_ms(probe, 200)
            opened = time.monotonic()
            for n in range(SLOW_CLIENTS):
                client = connect(server.url)
                if n % 2:
                    client.sendall(HALF_HEAD)
                    half.append(client)
                else:
                    silent.append(client)
            # While they are held, the half-sent ones trickle a byte now and then:
            # a deadline on the whole head is not reset by bytes that come slowly.
            during: list[float] = []
            while time.monotonic() - opened < HEAD_TIMEOUT * 0.6:
                during.append(healthz_p50_ms(probe, 20))
                for client in half:
                    client.send(b"x")
            closed = until_closed(silent + half, HEAD_TIMEOUT + 5)
            waited = time.monotonic() - opened
            after = healthz_p50_ms(probe, 200)
        assert len(closed) == SLOW_CLIENTS, f"{SLOW_CLIENTS - len(closed)} still open"
        assert HEAD_TIMEOUT <= waited < HEAD_TIMEOUT + 5
        assert {closed[client] for client in silent} == {b""}  # nothing sent, nothing said
        answers = [closed[client] for client in half]
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[0]
        assert b"content-type: application/problem+json" in answers[0]
        assert json.loads(answers[0].split(b"\r\n\r\n", 1)[1])["status"] == 408
        # Served about as fast as by an idle server while they were held, and
        # after (were they held for ever, the p50 would grow many times over);
        # the margin is for a machine shared with other work.
        during_p50 = statistics.median(during)
        assert during_p50 < before + 10, (before, during_p50)
        assert after < before + 10, (before, after)
    finally:
        for client in silent + half:
            client.close()
        server.stop()


def test_connections_beyond_the_cap_are_refused_at_once(database_url: str, tmp_path: Path) -> None:
    cap = 50
    server = ServerProcess(
        database_url=database_url,
        data_dir=tmp_path,
        env={"LEDGER_HEADER_TIMEOUT": str(HEAD_TIMEOUT), "LEDGER_MAX_CONNECTIONS": str(cap)},
    )
    held: list[socket.socket] = []
    try:
        with httpx.Client(base_url=server.url) as probe:
            assert probe.get("/healthz").status_code == 200  # the probe holds one connection
            held += [connect(server.url) for _ in range(cap - 1)]
            started = time.monotonic()
            over = connect(server.url)
            held.append(over)
            refused = until_closed([over], 1.0)
            assert len(refused) == 1, "the connection over the cap was held"
            (answer,) = refused.values()
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["status"] == 503
            assert time.monotonic() - started < 1.0
            # The connections already made are served meanwhile.
            assert probe.get("/healthz").status_code == 200
            # Once the silent ones are closed for their deadline, new ones are served.
            assert len(until_closed(held[:-1], HEAD_TIMEOUT + 5)) == cap - 1
            assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        for client in held:
            client.close()
        server.stop()


def test_each_head_has_its_deadline_and_an_answer_under_way_is_finished(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        database_url=database_url,
        data_dir=tmp_path,
        env={"LEDGER_HEADER_TIMEOUT": str(HEAD_TIMEOUT)},
    )
    clients: list[socket.socket] = []
    try:
        assert httpx.post(f"{server.url}/v1/ledgers", json={"name": "talks"}).status_code == 201
        # A head completed within the deadline is served; the connection stays open.
        slow_but_in_time = connect(server.url)
        clients.append(slow_but_in_time)
        slow_but_in_time.sendall(b"GET /healthz HTTP/1.1\r\nHost: ledger\r\n")
        time.sleep(HEAD_TIMEOUT / 2)
        slow_but_in_time.sendall(b"\r\n")
        assert read_status(slow_but_in_time, 5) == 200
        # A later head on it has a deadline from its own first byte.
        time.sleep(HEAD_TIMEOUT / 2)
        slow_but_in_time.sendall(HALF_HEAD)
        started = time.monotonic()
        (answer,) = until_closed([slow_but_in_time], HEAD_TIMEOUT + 5).values()
        assert HEAD_TIMEOUT - 0.1 <= time.monotonic() - started < HEAD_TIMEOUT + 2
        assert b"HTTP/1.1 408 " in answer, answer  # after what is left of the 200
        # A late head pipelined behind a 3 s event stream: the stream is finished
        # whole, then the connection closed.
        pipelined = connect(server.url)
        clients.append(pipelined)
        pipelined.sendall(
            b"GET /v1/ledgers/talks/events/stream?timeout=3 HTTP/1.1\r\nHost: ledger\r\n\r\n"
            + HALF_HEAD
        )
        started = time.monotonic()
        (answer,) = until_closed([pipelined], 3 + 5).values()
        assert time.monotonic() - started >= 3
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"\r\n0\r\n\r\n"), answer  # the last chunk: the stream ended
        assert b"408" not in answer
    finally:
        for client in clients:
            client.close()
        server.stop()


def serve_with_descriptor_limit(
    database_url: str, data_dir: Path, soft: int, hard: int
) -> ChildServer:
    port = free_port()
    data_dir.mkdir()
    limited = ["prlimit", f"--nofile={soft}:{hard}", sys.executable]
    return ChildServer(
        [*limited, "-m", "ledger", "serve", "--port", str(port)],
        port=port,
        log_path=data_dir / "server.log",
        env={
            **os.environ,
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_DATA_DIR": str(data_dir),
            "LEDGER_AUTH": "off",
        },
    )


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open files limit")


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_the_descriptor_limit_is_raised_to_fit_the_cap_or_the_cap_lowered(
    database_url: str, tmp_path: Path
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2048 + 128:
        pytest.skip(f"the hard descriptor limit, {hard}, is below what the default cap needs")
    roomy = serve_with_descriptor_limit(database_url, tmp_path / "roomy", 256, hard)
    try:
        assert open_files_limit(roomy.pid) >= 2048  # LEDGER_MAX_CONNECTIONS's default
    finally:
        roomy.stop()
    tight = serve_with_descriptor_limit(database_url, tmp_path / "tight", 200, 200)
    held: list[socket.socket] = []
    try:
        assert open_files_limit(tight.pid) == 200
        log = tight.log_path.read_text()
        assert "serving at most 72 connections" in log, log
        held += [connect(tight.url) for _ in range(72)]
        over = connect(tight.url)
        held.append(over)
        (answer,) = until_closed([over], 1.0).values()
        assert answer.startswith(b"HTTP/1.1 503 ")
    finally:
        for client in held:
            client.close()
        tight.stop()
