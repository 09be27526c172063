"""SQLite's WAL is checkpointed by a thread of its own, not inside a COMMIT."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.store.database import Database, raw_execute
from ledger.store.sqlite import SqliteBackend
from ledger.store.sqlite.wal import BACKSTOP_PAGES, WalCheckpointer


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def sqlite_backend(database: Database) -> SqliteBackend:
    backend = database.backend
    assert isinstance(backend, SqliteBackend)
    return backend


def thread_of(checkpoints: WalCheckpointer | None) -> threading.Thread | None:
    assert checkpoints is not None
    return checkpoints._thread


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(url=f"sqlite:///{tmp_path / 'ledger.db'}")
    database.migrate()
    yield database
    database.dispose()


def write_rows(database: Database, count: int) -> None:
    with database.write() as conn:
        for n in range(count):
            raw_execute(
                conn,
                "INSERT INTO ledgers (name, created_at, head_seq, head_hash, last_recorded_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (f"l{n}-{time.monotonic_ns()}", "2026-01-01T00:00:00Z", 0, "0" * 64, "x" * 27),
            )


def in_database_file(path: Path, copy: Path) -> int:
    """How many ledgers the database file holds by itself, without its WAL: what
    checkpoints have copied into it (a copy of the file alone is read)."""
    copy.write_bytes(path.read_bytes())
    with contextlib.closing(sqlite3.connect(copy)) as probe:
        return int(probe.execute("SELECT count(*) FROM ledgers").fetchone()[0])


def test_commits_are_checkpointed_soon_after_by_the_thread(
    database: Database, tmp_path: Path
) -> None:
    checkpoints = sqlite_backend(database).checkpoints
    before = checkpoints.checkpoints
    write_rows(database, 500)
    wait_until(lambda: checkpoints.checkpoints > before)
    assert in_database_file(tmp_path / "ledger.db", tmp_path / "copy.db") == 500


def test_without_the_thread_commits_stay_in_the_wal(database: Database, tmp_path: Path) -> None:
    """The control for the test above: the writer itself does not checkpoint them."""
    checkpoints = sqlite_backend(database).checkpoints
    wait_until(lambda: checkpoints.checkpoints > 0)  # the schema's tables are in the file
    checkpoints.close()
    sqlite_backend(database).checkpoints = WalCheckpointer(str(tmp_path / "ledger.db"), delay=60.0)
    write_rows(database, 500)
    assert in_database_file(tmp_path / "ledger.db", tmp_path / "copy.db") == 0


def test_the_writers_own_checkpoints_are_only_a_backstop(database: Database) -> None:
    with database.write() as conn:
        assert raw_execute(conn, "PRAGMA wal_autocheckpoint") == [(BACKSTOP_PAGES,)]


def test_a_commit_does_not_wait_for_its_checkpoint(tmp_path: Path) -> None:
    checkpoints = WalCheckpointer(str(tmp_path / "x.db"), delay=60.0)
    started = time.monotonic()
    checkpoints.committed()
    assert time.monotonic() - started < 1.0
    assert checkpoints.checkpoints == 0  # due in a minute; close ends the wait
    thread = thread_of(checkpoints)
    assert thread is not None and thread.is_alive()
    checkpoints.close()
    assert not thread.is_alive()


def test_commits_within_the_delay_share_one_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode = WAL").fetchall()
    checkpoints = WalCheckpointer(str(path), delay=0.5)
    for _ in range(50):
        checkpoints.committed()
    wait_until(lambda: checkpoints.checkpoints == 1)
    time.sleep(0.7)
    assert checkpoints.checkpoints == 1
    checkpoints.close()


def test_dispose_stops_the_thread_and_a_later_commit_starts_one(database: Database) -> None:
    write_rows(database, 1)
    first = thread_of(sqlite_backend(database).checkpoints)
    assert first is not None and first.is_alive()
    database.dispose()
    assert not first.is_alive()
    write_rows(database, 1)
    second = thread_of(sqlite_backend(database).checkpoints)
    assert second is not None and second.is_alive()
    database.dispose()
    assert not second.is_alive()


def test_a_failing_checkpoint_is_logged_and_never_reaches_the_commit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "x y%.db"  # a name that needs quoting in a URI
    checkpoints = WalCheckpointer(str(missing), delay=0.0)
    with caplog.at_level(logging.WARNING, logger="ledger.store"):
        checkpoints.committed()  # returns; the failure happens on the thread
        wait_until(lambda: "WAL checkpoint failed" in caplog.text)
    assert not missing.exists()  # a checkpoint never creates a database
    # It keeps serving commits afterwards.
    sqlite3.connect(missing).execute("PRAGMA journal_mode = WAL").fetchall()
    checkpoints.committed()
    wait_until(lambda: checkpoints.checkpoints == 1)
    checkpoints.close()
