"""Many live event-stream readers: the server's memory before, during and after
200 concurrent ``/events/stream`` readers, on SQLite and on PostgreSQL.

A real ``ledger serve`` process on a fresh database is filled with
``FILLED`` records. Then, in each of ``rounds`` rounds, ``READERS`` readers
(raw sockets, tests/streamclients.py) open streams ``BACKLOG`` records
behind the head while ``LIVE_ROUNDS`` batches of ``PER_BATCH`` records are
appended; a round ends when every reader has every record (any reader
missing one fails the run). Figures, each beside its in-run baseline:

* the server's RSS during the rounds (peak, ``VmHWM`` reset before the
  first) and after them (``VmRSS``, 2 s after the last), beside its RSS
  before them, idle with the same ledger: the target is a peak at most
  64 MB above it;
* the seconds a round takes until every reader has every record (the
  appends are paced, 0.2 s apart), beside a round with one reader alone on
  the same server.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bench.appends import BACKEND_NAMES, fresh_database, reachable_backends
from bench.harness import Figure, Report, console, peak_rss_mb
from tests.servers import ServerProcess
from tests.streamclients import StreamResult, follow, read_status_kib

LEDGER = "bench"
READERS = 200
FILLED = 20_000
BACKLOG = 500
LIVE_ROUNDS = 3
PER_BATCH = 100
RSS_GROWTH_TARGET_MB = 64


def _event(n: int) -> dict[str, object]:
    return {
        "type": "position.stated",
        "occurred_at": "2025-02-24",
        "party": "US" if n % 2 else "UA",
        "topic": "revenue-share",
        "data": {"stance": "demand", "summary": f"statement {n} of the bench ledger"},
        "source": {"name": "The New York Times", "kind": "media"},
    }


def _append(url: str, start: int, count: int) -> None:
    events = [_event(n) for n in range(start, start + count)]
    response = httpx.post(f"{url}/v1/ledgers/{LEDGER}/events", json=events, timeout=120)
    response.raise_for_status()


async def _round(server: ServerProcess, readers: int, head: int) -> float:
    """``readers`` readers from ``BACKLOG`` behind ``head`` while records are
    appended; the seconds until every reader had every record."""
    final = head + LIVE_ROUNDS * PER_BATCH
    path = f"/v1/ledgers/{LEDGER}/events/stream?after_seq={head - BACKLOG}&timeout=300"
    opened = [asyncio.Event() for _ in range(readers)]
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(follow(server.port, path, until_seq=final, timeout=300, opened=event))
        for event in opened
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 120)
    for batch in range(LIVE_ROUNDS):
        await asyncio.to_thread(_append, server.url, head + batch * PER_BATCH, PER_BATCH)
        await asyncio.sleep(0.2)
    results: list[StreamResult] = await asyncio.gather(*tasks)
    seconds = time.perf_counter() - started
    expected = list(range(head - BACKLOG + 1, final + 1))
    missing = [r for r in results if r.status != 200 or r.seqs != expected]
    if missing:
        raise RuntimeError(
            f"{len(missing)} of {readers} readers did not get records "
            f"{expected[0]}-{expected[-1]} (first: status {missing[0].status}, "
            f"{len(missing[0].seqs)} records)"
        )
    return seconds


def run_backend(report: Report, backend: str, directory: Path, rounds: int) -> None:
    name = BACKEND_NAMES[backend]
    console.print(f"[bold]{name}[/]")
    with fresh_database(backend, directory, "readers") as database_url:
        server = ServerProcess(database_url=database_url, data_dir=directory)
        try:
            httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
            for start in range(0, FILLED, 1000):
                _append(server.url, start, 1000)
            head = FILLED
            # One reader alone: the delivery baseline, and first-request costs paid.
            one_seconds = asyncio.run(_round(server, 1, head))
            head += LIVE_ROUNDS * PER_BATCH
            time.sleep(1)
            before_kib = read_status_kib(server.pid, "VmRSS")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            seconds = 0.0
            for _ in range(rounds):
                seconds += asyncio.run(_round(server, READERS, head))
                head += LIVE_ROUNDS * PER_BATCH
            peak_mb = peak_rss_mb(server.pid)
            time.sleep(2)
            after_kib = read_status_kib(server.pid, "VmRSS")
        finally:
            server.stop()
    before = before_kib / 1024
    target = f"<= {before + RSS_GROWTH_TARGET_MB:,.0f} MB (idle + {RSS_GROWTH_TARGET_MB})"
    for label, value, wanted in (
        (f"peak RSS during {READERS} readers x {rounds} rounds", peak_mb, target),
        (f"RSS after {READERS} readers", after_kib / 1024, target),
    ):
        report.add(
            Figure(
                suite="readers",
                name=f"{name}: {label}",
                value=value,
                unit="MB",
                baseline_name="RSS before the readers (idle, same process)",
                baseline=before,
                higher_is_better=False,
                target=wanted,
            )
        )
    records = BACKLOG + LIVE_ROUNDS * PER_BATCH
    report.add(
        Figure(
            suite="readers",
            name=f"{name}: a round, until {READERS} readers had all {records} records",
            value=seconds / rounds,
            unit="s",
            baseline_name="the same round, 1 reader",
            baseline=one_seconds,
            higher_is_better=False,
        )
    )


def run(
    report: Report, *, rounds: int = 3, backends: tuple[str, ...] = ("sqlite", "postgresql")
) -> None:
    console.rule("readers")
    for backend in reachable_backends(backends):
        with tempfile.TemporaryDirectory(prefix="ledger-bench-readers-") as tmp:
            run_backend(report, backend, Path(tmp), rounds)
