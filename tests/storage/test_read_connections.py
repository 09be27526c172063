"""Reads on many threads share a bounded number of database connections:
each connection caches pages (and on SQLite maps the file), so memory must
not grow with the number of threads that happen to read."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ledger.core.errors import StorageUnavailable
from ledger.store.database import Database
from ledger.store.dbapi_reads import raw_read

THREADS = 12
BOUND = 2


@pytest.fixture
def bounded(database_url: str) -> Iterator[Database]:
    database = Database(
        url=database_url, pool_size=BOUND, pool_overflow=0, read_connections=BOUND, pool_timeout=5
    )
    database.migrate()
    yield database
    database.dispose()


def test_concurrent_reads_use_at_most_the_bound_of_connections(bounded: Database) -> None:
    lock = threading.Lock()
    seen: set[int] = set()
    inside = 0
    most_inside = 0

    def read(_n: int) -> int:
        nonlocal inside, most_inside
        with raw_read(bounded) as reader:
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
                seen.add(id(reader._cursor.connection))
            time.sleep(0.05)
            row = reader.one("SELECT 1", [])
            with lock:
                inside -= 1
        assert row is not None
        return int(row[0])

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(read, range(THREADS * 2)))
    assert results == [1] * (THREADS * 2)
    assert most_inside == BOUND  # the others waited for a connection
    assert len(seen) <= BOUND


def test_a_reader_that_waits_too_long_gets_storage_unavailable(database_url: str) -> None:
    database = Database(
        url=database_url, pool_size=1, pool_overflow=0, read_connections=1, pool_timeout=0.2
    )
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with raw_read(database):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(StorageUnavailable, match="connection"), raw_read(database):
            pass
        release.set()
        holder.join()
        with raw_read(database) as reader:  # free again once the holder is done
            assert reader.one("SELECT 1", []) == (1,)
    finally:
        release.set()
        holder.join()
        database.dispose()


def test_disposed_read_connections_are_closed_and_reopened_on_use(tmp_path: Path) -> None:
    database = Database(url=f"sqlite:///{tmp_path / 'ledger.db'}", read_connections=BOUND)
    with raw_read(database) as reader:
        first = reader._cursor.connection
    database.dispose()
    with pytest.raises(Exception, match="closed"):
        first.execute("SELECT 1")
    with raw_read(database) as reader:
        assert reader.one("SELECT 1", []) == (1,)
    database.dispose()
