"""Hundreds of live event-stream readers against a real server process: each
gets every record, in order, and the server's memory stays bounded; over
``LEDGER_MAX_STREAMS`` a reader is refused with a 503 problem and Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import position
from tests.servers import ServerProcess
from tests.streamclients import StreamResult, follow, read_status_kib

pytestmark = pytest.mark.slow

LEDGER = "talks"
READERS = 200
FILLED = 20_000
BACKLOG = 500
ROUNDS = 3
PER_ROUND = 100
# The server's peak RSS while 200 readers follow it, over its RSS before them.
# Without bounds it grew by ~240 MB here (40 threads, each with a SQLite
# connection and a malloc arena, and 200 copies of every page sent).
RSS_GROWTH_BOUND_MB = 64


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url=database_url, data_dir=tmp_path)
    try:
        yield process
    finally:
        process.stop()


def _fill(url: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, count, 1000):
            batch = [
                position(topic=f"topic-{n % 7}") for n in range(start, min(count, start + 1000))
            ]
            client.post(f"/v1/ledgers/{LEDGER}/events", json=batch).raise_for_status()


async def _readers_during_appends(server: ServerProcess) -> tuple[list[StreamResult], int]:
    path = f"/v1/ledgers/{LEDGER}/events/stream?after_seq={FILLED - BACKLOG}&timeout=120"
    final = FILLED + ROUNDS * PER_ROUND
    opened = [asyncio.Event() for _ in range(READERS)]
    readers = [
        asyncio.create_task(follow(server.port, path, until_seq=final, timeout=120, opened=event))
        for event in opened
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 60)
    for _ in range(ROUNDS):
        await asyncio.to_thread(_fill_more, server.url)
        await asyncio.sleep(0.3)
    return await asyncio.gather(*readers), final


def _fill_more(url: str) -> None:
    batch = [position(stance="demand") for _ in range(PER_ROUND)]
    httpx.post(f"{url}/v1/ledgers/{LEDGER}/events", json=batch, timeout=60).raise_for_status()


def test_200_readers_get_every_record_in_bounded_memory(server: ServerProcess) -> None:
    httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    _fill(server.url, FILLED)
    time.sleep(0.5)
    before_kib = read_status_kib(server.pid, "VmRSS")
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS

    started = time.monotonic()
    results, final = asyncio.run(_readers_during_appends(server))
    seconds = time.monotonic() - started

    peak_kib = read_status_kib(server.pid, "VmHWM")
    expected = list(range(FILLED - BACKLOG + 1, final + 1))
    assert [r.status for r in results] == [200] * READERS
    short = [len(r.seqs) for r in results if r.seqs != expected]
    assert not short, (
        f"{len(short)} readers missed records (they got {short[:5]} of {len(expected)})"
    )
    growth_mb = (peak_kib - before_kib) / 1024
    assert growth_mb < RSS_GROWTH_BOUND_MB, (
        f"RSS {before_kib / 1024:.0f} MB before, peak {peak_kib / 1024:.0f} MB with "
        f"{READERS} readers ({seconds:.1f} s)"
    )


def test_readers_over_the_cap_get_a_503_problem_with_retry_after(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        database_url=database_url, data_dir=tmp_path, env={"LEDGER_MAX_STREAMS": "3"}
    )
    try:
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        _fill(server.url, 2)
        results = asyncio.run(_over_the_cap(server))
    finally:
        server.stop()
    admitted, refused, later = results
    assert [r.status for r in admitted] == [200, 200, 200]
    assert all(r.seqs == [1, 2] for r in admitted)
    assert refused.status == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    problem = json.loads(refused.body)
    assert problem["status"] == 503
    assert "3" in problem["detail"]  # names the cap
    assert later.status == 200 and later.seqs == [1, 2]


async def _over_the_cap(
    server: ServerProcess,
) -> tuple[list[StreamResult], StreamResult, StreamResult]:
    path = f"/v1/ledgers/{LEDGER}/events/stream?timeout=2"
    opened = [asyncio.Event() for _ in range(3)]
    holders = [
        asyncio.create_task(follow(server.port, path, until_seq=3, timeout=30, opened=event))
        for event in opened
    ]
    await asyncio.gather(*(event.wait() for event in opened))
    refused = await follow(server.port, path, until_seq=3, timeout=30)
    admitted = await asyncio.gather(*holders)  # their streams end after timeout=2
    later = await follow(server.port, f"{path[:-1]}1", until_seq=3, timeout=30)
    return admitted, refused, later
