"""Crash durability: SIGKILL a real server under 16 writers, restart it, audit it.

Each cycle starts ``ledger serve`` on the same database and data directory,
audits the ledger over HTTP (chain, Merkle root, signed checkpoint, every
acknowledged receipt, batches whole or absent, ids unique), retries the
appends the last crash left unacknowledged with their Idempotency-Keys, then
runs 16 writers and a checkpoint poller and kills the server with SIGKILL at
a random moment. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.checks import (
    SERVER_ENV,
    Attempt,
    check_acknowledged,
    new_attempt,
    post_attempt,
    presence,
    read_ledger,
    verify_checkpoint,
)
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

LEDGER = "crash"
WRITERS = 16
CYCLES = 6
SEED = 20251126
REPLAYS_PER_CYCLE = 16


@dataclass
class Figures:
    backend: str
    cycles: int = 0
    attempts: int = 0
    acknowledged_during_load: int = 0
    unacknowledged: int = 0
    unacknowledged_but_committed: int = 0  # the kill hit between COMMIT and the response
    unacknowledged_absent: int = 0
    acknowledged_events: int = 0
    present_events: int = 0
    replays_checked: int = 0
    max_checkpoint_served: int = 0
    seconds: float = 0.0


class Load:
    """16 writers and a checkpoint poller against one server, until it dies."""

    def __init__(self, url: str, cycle: int, seed: int) -> None:
        self.url = url
        self.cycle = cycle
        self.seed = seed
        self.stop = threading.Event()
        self.attempts: list[Attempt] = []
        self.served: list[int] = []
        self._pool = ThreadPoolExecutor(max_workers=WRITERS + 1)
        self._futures: list[Future[None]] = []

    def start(self) -> None:
        self._futures = [self._pool.submit(self._write, w) for w in range(WRITERS)]
        self._futures.append(self._pool.submit(self._poll))

    def join(self) -> None:
        self.stop.set()
        self._pool.shutdown(wait=True)
        for future in self._futures:
            future.result()  # re-raise a writer's failed assertion here

    def _write(self, writer: int) -> None:
        rng = random.Random(self.seed * 100 + writer)
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            while not self.stop.is_set():
                attempt = new_attempt(f"c{self.cycle}-w{writer}-{n}", rng.choice((0, 0, 3)))
                n += 1
                self.attempts.append(attempt)
                try:
                    response = post_attempt(http, LEDGER, attempt)
                except httpx.TransportError:
                    return  # killed mid-request: the outcome is unknown to this client
                # A fresh key is never a replay, and nothing but a crash may fail it.
                assert response.status_code == 201, (attempt.key, response.text)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    response = http.get(f"/v1/ledgers/{LEDGER}/checkpoint")
                except httpx.TransportError:
                    return
                assert response.status_code == 200, response.text
                size = int(response.text.split("\n")[1])
                assert not self.served or size >= self.served[-1], (self.served[-1], size)
                self.served.append(size)
                time.sleep(0.02)


def audit(
    http: httpx.Client,
    acknowledged: list[Attempt],
    pending: list[Attempt],
    served_before: int,
    figures: Figures,
) -> list[Attempt]:
    """Check the restarted ledger; return the pending attempts found committed."""
    response = http.get(f"/v1/ledgers/{LEDGER}/checkpoint")
    assert response.status_code == 200, response.text
    checkpoint = verify_checkpoint(http, LEDGER, response.text)
    acked_size = max((r["tree_size"] for a in acknowledged for r in a.receipts or []), default=0)
    assert checkpoint.tree_size >= served_before, (checkpoint.tree_size, served_before)
    assert checkpoint.tree_size >= acked_size, (checkpoint.tree_size, acked_size)

    view = read_ledger(http, LEDGER)  # chain and id uniqueness
    # Nothing writes now, so the records, the tree and the checkpoint describe one state.
    assert view.size == checkpoint.tree_size
    assert view.root == checkpoint.root
    assert view.head_hash == checkpoint.head_hash

    for attempt in acknowledged:
        check_acknowledged(view, attempt)
        presence(view, attempt)
    committed = [attempt for attempt in pending if presence(view, attempt)]
    # Every record is one a client sent: acknowledged, or committed as the server died.
    sent = sum(len(a.ids) for a in acknowledged) + sum(len(a.ids) for a in committed)
    assert view.size == sent, (view.size, sent)
    figures.present_events = view.size
    return committed


def test_sigkill_under_16_writers_loses_no_acknowledged_append(
    database_url: str, tmp_path: Path
) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    figures = Figures(backend=backend)
    rng = random.Random(SEED)
    acknowledged: list[Attempt] = []
    pending: list[Attempt] = []
    served_before = 0
    logs: list[Path] = []
    started = time.monotonic()
    server = ServerProcess(database_url=database_url, data_dir=tmp_path, env=SERVER_ENV)
    try:
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        for cycle in range(CYCLES + 1):
            if cycle:
                server = ServerProcess(database_url=database_url, data_dir=tmp_path, env=SERVER_ENV)
            logs.append(server.log_path)
            with httpx.Client(base_url=server.url, timeout=30) as http:
                committed = audit(http, acknowledged, pending, served_before, figures)
                figures.unacknowledged_but_committed += len(committed)
                figures.unacknowledged_absent += len(pending) - len(committed)
                # Retrying with the same key yields exactly one record: the committed
                # ones replay (200), the absent ones are appended now (201).
                for attempt in pending:
                    response = post_attempt(http, LEDGER, attempt)
                    expected = 200 if attempt in committed else 201
                    assert response.status_code == expected, (attempt.key, response.text)
                    acknowledged.append(attempt)
                for attempt in rng.sample(acknowledged, min(REPLAYS_PER_CYCLE, len(acknowledged))):
                    response = post_attempt(http, LEDGER, attempt)
                    assert response.status_code == 200, (attempt.key, response.text)
                    figures.replays_checked += 1
                pending = []
                if cycle == CYCLES:
                    view = read_ledger(http, LEDGER)
                    for attempt in acknowledged:
                        check_acknowledged(view, attempt)
                    figures.acknowledged_events = sum(len(a.ids) for a in acknowledged)
                    assert view.size == figures.acknowledged_events
                    figures.present_events = view.size
                    break
                served_before = int(
                    http.get(f"/v1/ledgers/{LEDGER}/checkpoint").text.split("\n")[1]
                )

            load = Load(server.url, cycle, SEED + cycle)
            load.start()
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            load.join()
            figures.cycles += 1
            served_before = max([served_before, *load.served])
            figures.max_checkpoint_served = served_before
            figures.attempts += len(load.attempts)
            for attempt in load.attempts:
                if attempt.receipts is not None:
                    acknowledged.append(attempt)
                    figures.acknowledged_during_load += 1
                else:
                    pending.append(attempt)
                    figures.unacknowledged += 1
    finally:
        server.kill()
    figures.seconds = round(time.monotonic() - started, 1)
    for log in logs:
        text = log.read_text(errors="replace")
        assert "Traceback" not in text and "request failed" not in text, f"{log}:\n{text}"
    print(f"\ncrash figures: {asdict(figures)}")
    assert figures.cycles >= CYCLES
    assert figures.acknowledged_events == figures.present_events
