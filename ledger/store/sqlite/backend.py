"""SQLite's ``ledger.store.backend.Backend``: one writer connection, write
transactions that take the write lock at BEGIN, WAL checkpoints in a thread.

WAL mode with ``synchronous=FULL`` makes an acknowledged append survive power
loss; write transactions open with ``BEGIN IMMEDIATE`` so the write lock is
taken before the head is read, never upgraded later (which is where SQLite
deadlocks and reports ``SQLITE_BUSY``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from ledger.store.sqlite.inserts import insert_many
from ledger.store.sqlite.point_reads import LentReaders
from ledger.store.sqlite.revocations import RevocationFile
from ledger.store.sqlite.wal import BACKSTOP_PAGES, WalCheckpointer

if TYPE_CHECKING:
    from ledger.store.backend import SealedGroup
    from ledger.store.projections import RowsInto

__all__ = ["SqliteBackend"]

# Execution options naming what a connection is for (see ``_on_begin``).
WRITE = "ledger_write"
READ = "ledger_read"
_BUSY_MS = 30_000
_MMAP_BYTES = 1 << 30
_CACHE_KIB = 16 * 1024

_UPDATE_HEAD = "UPDATE ledgers SET head_seq = ?, head_hash = ?, last_recorded_at = ? WHERE id = ?"
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (ledger_id, tree_size, root, head_hash, note, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class SqliteBackend:
    inline_groups = True
    writes_groups = False
    # BEGIN IMMEDIATE already holds the only write lock.
    head_lock = ""
    # A local indexed read costs less than the hop to a worker thread.
    cheap_token_lookups = True
    derives_rows = True
    integrity_errors: tuple[type[Exception], ...] = (exc.IntegrityError, sqlite3.IntegrityError)
    outage_errors: tuple[type[Exception], ...] = (
        sqlite3.OperationalError,
        sqlite3.InterfaceError,
    )
    # SQLite allows one writer per file; queueing writers on one kept
    # connection rather than in SQLite's busy handler (which sleeps and
    # polls) keeps latency flat.
    single_writer = True
    lateral_joins = False

    def __init__(self, url: sa.URL) -> None:
        self.file = url.database or ""
        if self.file in ("", ":memory:"):
            raise ValueError("use a file for SQLite: an in-memory database is lost on exit")
        self.checkpoints = WalCheckpointer(self.file)

    # -- the append port ------------------------------------------------

    def insert_many(
        self,
        conn: Connection,
        sql: str,
        rows: Sequence[Sequence[Any]],
        table: sa.Table | None,
    ) -> None:
        cursor = conn.connection.cursor()
        try:
            insert_many(cast(sqlite3.Cursor, cursor), sql, rows)
        finally:
            cursor.close()

    def move_head(self, conn: Connection, moved: Sequence[Any], checkpoint: Sequence[Any]) -> None:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(_UPDATE_HEAD, tuple(moved))
            cursor.execute(_INSERT_CHECKPOINT, tuple(checkpoint))
        finally:
            cursor.close()

    async def write_group(self, group: SealedGroup, projections: Sequence[RowsInto]) -> bool:
        raise NotImplementedError("SQLite's groups are written inline (inline_groups)")

    # -- SQL --------------------------------------------------------------

    def json_text(self, column: str, *path: str) -> str:
        return f"json_extract(CAST({column} AS TEXT), '$.{'.'.join(path)}')"

    def bytes_contain(self, column: str, needle: str) -> str:
        return f"instr({column}, CAST('{needle}' AS BLOB)) > 0"

    # -- the engine ------------------------------------------------------

    def engine_options(
        self, url: sa.URL, *, pool_size: int | None, pool_overflow: int | None, timeout: float
    ) -> dict[str, Any]:
        Path(self.file).parent.mkdir(parents=True, exist_ok=True)
        # Point reads have connections of their own (``LentReaders``);
        # the pool serves the writer and the few SQLAlchemy reads. Each
        # connection holds a page cache of up to _CACHE_KIB, so none is
        # opened beyond the bound. A file cannot go away under us: no pre-ping.
        return {
            "pool_pre_ping": False,
            "connect_args": {"check_same_thread": False, "timeout": _BUSY_MS / 1000},
            "pool_size": 5 if pool_size is None else pool_size,
            "max_overflow": 0 if pool_overflow is None else pool_overflow,
            "pool_timeout": timeout,
        }

    def attach(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Hand transaction control to us: pysqlite's implicit BEGIN cannot
            # say IMMEDIATE.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # Checkpoints are WalCheckpointer's; this connection's are a backstop.
            cursor.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Proofs read O(log n) nodes scattered over a large file: memory-mapped
            # reads of pages the OS already caches avoid a read() call per page.
            cursor.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
            cursor.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            options = connection.get_execution_options()
            if options.get(READ):
                return  # autocommit reads: each statement sees the latest commit
            # On the driver's connection: SQLAlchemy's statement machinery cost
            # more than BEGIN itself, once per append group.
            begin = "BEGIN IMMEDIATE" if options.get(WRITE) else "BEGIN"
            connection.connection.driver_connection.execute(begin)  # type: ignore[union-attr]

    def read_options(self) -> Mapping[str, Any]:
        return {READ: True}

    def point_reads(self, engine: Engine, *, limit: int, timeout: float) -> LentReaders:
        return LentReaders(engine, limit=limit, timeout=timeout)

    def write_options(self) -> Mapping[str, Any]:
        return {WRITE: True}

    def reusable(self, connection: Connection, idle: float) -> bool:
        return True  # a local file: nothing can end the connection under us

    def committed(self) -> None:
        self.checkpoints.committed()

    def commit_failed(self, error: Exception) -> Exception | None:
        return None

    def lock_migrations(self, conn: Connection) -> None:
        """BEGIN IMMEDIATE already holds the only write lock."""

    def revocations(self, url: sa.URL) -> RevocationFile:
        return RevocationFile(self.file)

    def close(self) -> None:
        self.checkpoints.close()
