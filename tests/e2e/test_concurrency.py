"""Real server processes under concurrent writers: no fork, no gap, no 5xx."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ledger.core.chain import verify_chain
from tests.conftest import POSTGRES_URL, _create_pg_schema, _drop_pg_schema, position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow
LEDGER = "concurrency"


def append_many(base_url: str, count: int, tag: str) -> list[int]:
    """Append ``count`` single events; return the status codes."""
    statuses = []
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for n in range(count):
            event = position(id=str(uuid.uuid4()))
            event["data"] = {"stance": "oppose", "summary": f"{tag} #{n}"}
            response = http.post(
                f"/v1/ledgers/{LEDGER}/events",
                json=event,
                headers={"Idempotency-Key": f"{tag}-{n}"},
            )
            statuses.append(response.status_code)
    return statuses


def read_all(base_url: str) -> list[bytes]:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        response = http.get(
            f"/v1/ledgers/{LEDGER}/events", headers={"Accept": "application/x-ndjson"}
        )
        response.raise_for_status()
        return response.content.splitlines()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url=database_url, data_dir=tmp_path)
    httpx.post(f"{process.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    yield process
    process.stop()


def test_eight_writers_append_2000_events_gap_free(server: ServerProcess) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda w: append_many(server.url, 250, f"w{w}"), range(8)))
    statuses = [s for result in results for s in result]
    assert statuses.count(201) == 2000, {s: statuses.count(s) for s in set(statuses)}
    lines = read_all(server.url)
    assert len(lines) == 2000
    head = httpx.get(f"{server.url}/v1/ledgers/{LEDGER}/head").json()
    assert verify_chain(lines, ledger=LEDGER) == head["head_hash"]
    assert head["size"] == 2000


@contextlib.contextmanager
def shared_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database for two servers: a SQLite file, or a PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("needs LEDGER_TEST_POSTGRES_URL")
    schema, url = _create_pg_schema()
    try:
        yield url
    finally:
        _drop_pg_schema(schema)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_server_processes_on_one_database_never_fork(backend: str, tmp_path: Path) -> None:
    # Each server groups its own appends and (on SQLite) seals waiting ones
    # ahead on the head its last group leaves; the other server's appends
    # move that head in between, which the sealed records must notice.
    with shared_database(backend, tmp_path) as url:
        first = ServerProcess(database_url=url, data_dir=tmp_path)
        second = ServerProcess(database_url=url, data_dir=tmp_path)
        try:
            httpx.post(f"{first.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
            targets = [first.url, second.url] * 3
            with ThreadPoolExecutor(max_workers=len(targets)) as pool:
                results = list(
                    pool.map(lambda i: append_many(targets[i], 150, f"p{i}"), range(len(targets)))
                )
            statuses = [s for result in results for s in result]
            assert statuses.count(201) == 900, {s: statuses.count(s) for s in set(statuses)}
            for base in (first.url, second.url):
                lines = read_all(base)
                assert len(lines) == 900
                verify_chain(lines, ledger=LEDGER)
        finally:
            first.stop()
            second.stop()
        # The tree and every checkpoint the two signed agree with the records.
        audit = subprocess.run(
            [sys.executable, "-m", "ledger", "verify", LEDGER, "--json"],
            env={**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr


def test_a_restarted_server_never_serves_a_smaller_checkpoint(
    database_url: str, tmp_path: Path
) -> None:
    first = ServerProcess(database_url=database_url, data_dir=tmp_path)
    try:
        httpx.post(f"{first.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        append_many(first.url, 5, "before")
        served = httpx.get(f"{first.url}/v1/ledgers/{LEDGER}/checkpoint").text
    finally:
        first.kill()
    second = ServerProcess(database_url=database_url, data_dir=tmp_path)
    try:
        after = httpx.get(f"{second.url}/v1/ledgers/{LEDGER}/checkpoint").text
    finally:
        second.stop()
    assert int(after.split("\n")[1]) >= int(served.split("\n")[1]) == 5
    assert after == served  # same tree, same key: Ed25519 signs it identically
