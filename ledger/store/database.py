"""Engines, transaction modes and schema migration.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so an
acknowledged append survives power loss; write transactions open with
``BEGIN IMMEDIATE`` so the write lock is taken before the head is read, never
upgraded later (which is where SQLite deadlocks and reports ``SQLITE_BUSY``).
PostgreSQL serializes appends with a row lock on the ledger's head row instead
(see ``recorder``), which also holds across several server processes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from ledger.core.errors import StorageUnavailable
from ledger.store.walcheckpoints import BACKSTOP_PAGES, WalCheckpointer

__all__ = [
    "INTEGRITY_ERRORS",
    "Database",
    "WriteTransaction",
    "alembic_config",
    "raw_execute",
    "raw_execute_many",
]

log = logging.getLogger("ledger.store")

_WRITE = "ledger_write"
_READ = "ledger_read"
_SQLITE_BUSY_MS = 30_000
_SQLITE_MMAP_BYTES = 1 << 30
_SQLITE_CACHE_KIB = 16 * 1024
_HOT_IDLE_SECONDS = 1.0
_CONNECT_TIMEOUT_S = 5
_MIGRATION_LOCK_ID = 0x1ED6E7  # pg_advisory_xact_lock key for schema upgrades


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to us: pysqlite's implicit BEGIN cannot
        # say IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # Checkpoints are WalCheckpointer's; this connection's are a backstop.
        cursor.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Proofs read O(log n) nodes scattered over a large file: memory-mapped
        # reads of pages the OS already caches avoid a read() call per page.
        cursor.execute(f"PRAGMA mmap_size = {_SQLITE_MMAP_BYTES}")
        cursor.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get(_READ):
            return  # autocommit reads: each statement sees the latest commit
        # On the driver's connection: SQLAlchemy's statement machinery cost
        # more than BEGIN itself, once per append group.
        begin = "BEGIN IMMEDIATE" if options.get(_WRITE) else "BEGIN"
        connection.connection.driver_connection.execute(begin)  # type: ignore[union-attr]


class WriteTransaction:
    """An open write transaction: statements on ``connection``, then ``commit`` or
    ``rollback`` exactly once (from any thread), which also releases the lock.

    ``keep`` takes the connection back once its transaction ended cleanly (the
    SQLite writer's connection lives on); otherwise it is closed.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        lock: threading.Lock | None,
        keep: Callable[[Connection], None] | None = None,
        committed: Callable[[], None] | None = None,
    ) -> None:
        self.connection = connection
        self._lock = lock
        self._keep = keep
        self._committed = committed
        try:
            self._transaction = connection.begin()
        except BaseException:
            self._close(clean=False)
            raise

    def commit(self) -> None:
        clean = False
        try:
            with translate_errors():
                self._commit()
            clean = True
        finally:
            self._close(clean=clean)
        if self._committed is not None:
            self._committed()

    def rollback(self) -> None:
        """Best effort: the caller is already failing, and a database whose
        connection is gone rolls the transaction back by itself."""
        clean = False
        try:
            self._transaction.rollback()
            clean = True
        except Exception:
            log.warning("rollback failed; the connection is discarded", exc_info=True)
        finally:
            self._close(clean=clean)

    def _commit(self) -> None:
        try:
            self._transaction.commit()
        except (exc.OperationalError, exc.InterfaceError) as e:
            if self.connection.dialect.name == "sqlite":
                raise
            # PostgreSQL's connection died with COMMIT in flight: it may have
            # committed. Still 503 (never retried here, never acknowledged),
            # but say so, so the client retries with its Idempotency-Key
            # rather than assuming nothing was written.
            raise StorageUnavailable(
                "the database connection failed during COMMIT: the write may "
                "or may not have been recorded; retry with the same "
                "Idempotency-Key to find out"
            ) from e

    def _close(self, *, clean: bool) -> None:
        try:
            if clean and self._keep is not None:
                self._keep(self.connection)
            else:
                self.connection.close()
        finally:
            if self._lock is not None:
                self._lock.release()


class Database:
    """One engine plus the transaction discipline the recorder relies on."""

    def __init__(
        self,
        *,
        url: str,
        echo: bool = False,
        pool_size: int | None = None,
        pool_overflow: int | None = None,
        pool_timeout: float = 10.0,
        read_connections: int = 8,
    ) -> None:
        """``pool_size``/``pool_overflow``: the engine's pool (default: 44 and
        16 on PostgreSQL, 5 and 0 on SQLite); ``read_connections``: SQLite's
        connections for point reads (``sqlite_reading``). A caller that finds
        them all in use waits up to ``pool_timeout`` seconds, then gets
        ``StorageUnavailable``."""
        self.url = sa.engine.make_url(url)
        if self.url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.url.get_backend_name()!r}")
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # pre-ping (a SELECT 1 per checkout) lets PostgreSQL pools survive a
        # server restart; a SQLite file cannot go away under us, so it skips it.
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            database = self.url.database or ""
            if database in ("", ":memory:"):
                raise ValueError("use a file for SQLite: an in-memory database is lost on exit")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": _SQLITE_BUSY_MS / 1000}
            # Point reads have connections of their own (``sqlite_reading``);
            # the pool serves the writer and the few SQLAlchemy reads. Each
            # connection holds a page cache of up to _SQLITE_CACHE_KIB, so
            # none is opened beyond the bound.
            kwargs.update(
                pool_size=5 if pool_size is None else pool_size,
                max_overflow=0 if pool_overflow is None else pool_overflow,
                pool_timeout=pool_timeout,
            )
        else:
            # A database that drops packets rather than refusing them must cost a
            # request seconds (then 503), not a TCP timeout; a URL may override.
            kwargs.update(
                # As many as the threads that may read at once (the 40 of
                # AnyIO's pool, plus the writer): an overflow connection is
                # closed on return, and under load every request paid a new
                # connection (measured: 259 -> 456 appends/s at 32 clients).
                pool_size=44 if pool_size is None else pool_size,
                max_overflow=16 if pool_overflow is None else pool_overflow,
                pool_timeout=pool_timeout,
                connect_args={"connect_timeout": _CONNECT_TIMEOUT_S},
            )
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_hooks(self.engine)
        # SQLite allows one writer per file; queueing writers here rather than
        # in SQLite's busy handler (which sleeps and polls) keeps latency flat.
        # Its writer keeps one connection between transactions: a pool
        # checkout and its options cost more than BEGIN itself. On
        # PostgreSQL, only the hot transactions share one (see begin_write).
        self._writer = _KeptConnection()
        self._checkpoints = WalCheckpointer(self.url.database or "") if self.is_sqlite else None
        self._readers = _LentConnections(
            limit=read_connections, timeout=pool_timeout, connect=self._sqlite_connection
        )
        # PostgreSQL: per event loop, the connection its one-statement writes
        # use (``autocommit_row``), with the time it was last used (see
        # ``_HOT_IDLE_SECONDS``); a psycopg async connection belongs to one loop.
        self._loop_connections: dict[
            asyncio.AbstractEventLoop, tuple[psycopg.AsyncConnection[Any], float]
        ] = {}

    def lend_sqlite_reader(self) -> tuple[int, Any]:
        """A SQLite connection of its own for autocommit reads, as ``(generation,
        connection)``: the caller gives the pair back with ``return_sqlite_reader``.

        A pool checkout and return cost ~13 us here, more than the indexed
        lookup behind a token check or a proof step; these connections are
        lent from a plain free list instead (~1 us). There are at most
        ``read_connections`` of them, however many threads read: each caches
        pages and maps the file, and one a thread took the server from 146
        to 848 MB under 200 event-stream readers.
        """
        return self._readers.take()

    def return_sqlite_reader(self, held: tuple[int, Any]) -> None:
        self._readers.give(held)

    def _sqlite_connection(self) -> Any:
        # Made by the engine, so with its PRAGMAs; detached: never returned to the pool.
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()
        return connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads, without a transaction around them.

        Stored records, tree nodes and checkpoints never change and a head
        only grows, so statements that each see the latest commit never
        contradict each other; skipping BEGIN/COMMIT halves a proof's round
        trips.
        """
        with translate_errors(), self.engine.connect() as connection:
            if self.is_sqlite:
                connection.execution_options(**{_READ: True})
            else:
                connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that holds the database's write lock from its first statement."""
        transaction = self.begin_write()
        try:
            with translate_errors():
                yield transaction.connection
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()

    def begin_write(self, *, hot: bool = False) -> WriteTransaction:
        """``write`` in two steps, for a caller that commits elsewhere (another thread).

        ``hot``: one of a stream of short transactions (the append groups). On
        PostgreSQL they share one connection, kept between them while it is
        in use at least every ``_HOT_IDLE_SECONDS``: a pool checkout pings the
        server first, a round trip as long as a statement, once per group.
        A connection idle for longer, or whose server ended it, is closed and
        a new one comes from the pool (with its ping). On SQLite every write
        shares the one writer's connection, under the write lock.
        """
        writer = self._writer
        with translate_errors():
            if self.is_sqlite:
                writer.lock.acquire()
            elif not hot or not writer.lock.acquire(blocking=False):
                return WriteTransaction(self.engine.connect(), lock=None)
            try:
                connection = writer.take(usable=self._reusable)
                if connection is None:
                    connection = self.engine.connect()
                    if self.is_sqlite:
                        connection.execution_options(**{_WRITE: True})
            except BaseException:
                writer.lock.release()
                raise
            committed = None if self._checkpoints is None else self._checkpoints.committed
            return WriteTransaction(
                connection, lock=writer.lock, keep=writer.keep, committed=committed
            )

    async def autocommit_row(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """PostgreSQL, from an event loop: one statement in its own transaction,
        without holding a thread; its first row.

        The loop keeps one connection between statements, checked with
        ``_quiet`` before each use and, once idle for ``_HOT_IDLE_SECONDS``,
        by a round trip that must come back within the connect timeout (a
        server that stopped answering would otherwise hold the statement, and
        every append queued behind it, for as long as TCP retries). A failure
        of the connection is ``StorageUnavailable``; once the statement was
        sent it may or may not have committed, and the error says so. A
        statement the server refused raises the driver's error: nothing was
        written.
        """
        if self.is_sqlite:
            raise RuntimeError("autocommit_row is for PostgreSQL")
        loop = asyncio.get_running_loop()
        kept = self._loop_connections.pop(loop, None)
        connection = None
        if kept is not None:
            connection, since = kept
            if connection.closed or not _quiet_socket(connection):
                await connection.close()
                connection = None
            elif time.monotonic() - since > _HOT_IDLE_SECONDS and not await _answers(connection):
                connection.pgconn.finish()
                connection = None
        if connection is None:
            self._end_closed_loops_connections()
            timeout: dict[str, Any] = {}
            if "connect_timeout" not in self.url.query:
                timeout["connect_timeout"] = _CONNECT_TIMEOUT_S
            try:
                connection = await psycopg.AsyncConnection.connect(
                    self._conninfo(), autocommit=True, **timeout
                )
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
        try:
            cursor = await connection.execute(sql, params)
            row = await cursor.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            await connection.close()
            raise StorageUnavailable(
                # Only requests without an Idempotency-Key are written this way
                # (Recorder._write_group): a replay cannot tell them.
                "the database connection failed during a write: it may or may not "
                "have been recorded; look for the event in the ledger before sending "
                "it again (with an Idempotency-Key, a retry finds out by itself)"
            ) from e
        except psycopg.Error:
            self._keep_loop_connection(loop, connection)  # refused, rolled back: still good
            raise
        except BaseException:  # cancelled mid-statement: the connection's state is unknown
            connection.pgconn.finish()
            raise
        self._keep_loop_connection(loop, connection)
        return None if row is None else tuple(row)

    def _keep_loop_connection(
        self, loop: asyncio.AbstractEventLoop, connection: psycopg.AsyncConnection[Any]
    ) -> None:
        """Keep ``connection`` for ``loop``, unless a statement that ran meanwhile
        already kept one: one a loop is enough."""
        if loop in self._loop_connections:
            connection.pgconn.finish()
        else:
            self._loop_connections[loop] = (connection, time.monotonic())

    def _end_closed_loops_connections(self) -> None:
        for loop in [loop for loop in self._loop_connections if loop.is_closed()]:
            connection, _since = self._loop_connections.pop(loop)
            connection.pgconn.finish()  # what AsyncConnection.close does, without a loop

    def _conninfo(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _reusable(self, connection: Connection, idle: float) -> bool:
        if self.is_sqlite:
            return True  # a local file: nothing can end the connection under us
        return idle <= _HOT_IDLE_SECONDS and _quiet(connection)

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision``; safe when several processes start at once."""
        with self.write() as connection:
            if not self.is_sqlite:
                connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
            command.upgrade(alembic_config(connection), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.read() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def ping(self) -> None:
        with self.read() as connection:
            connection.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.close()
        with self._writer.lock:
            kept = self._writer.take(usable=lambda _connection, _idle: True)
        if kept is not None:
            kept.close()
        self._readers.close_all()  # new ones open if used again
        # Their loops may be gone: end them as AsyncConnection.close does, without awaiting.
        loop_connections = list(self._loop_connections.values())
        self._loop_connections.clear()
        for loop_connection, _since in loop_connections:
            loop_connection.pgconn.finish()
        self.engine.dispose()


class _LentConnections:
    """Up to ``limit`` connections, opened by ``connect`` when first needed and
    lent one caller at a time, the most recently returned first (its cache
    is the warmest). A caller finding all of them lent waits up to
    ``timeout`` seconds, then gets ``StorageUnavailable``.

    ``take`` hands out ``(generation, connection)``, given back as is:
    ``close_all`` starts a new generation, so a connection lent before it
    (and closed by it) is not lent again.
    """

    def __init__(self, *, limit: int, timeout: float, connect: Callable[[], Any]) -> None:
        if limit < 1:
            raise ValueError("at least one connection")
        self._limit = limit
        self._timeout = timeout
        self._connect = connect
        self._free: list[tuple[int, Any]] = []
        self._every: list[Any] = []  # of this generation, free or lent
        self._opening = 0
        self._waiting = 0
        self._generation = 0
        # Taken directly on the fast paths: Condition's own methods are Python code.
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)

    def take(self) -> tuple[int, Any]:
        with self._lock:
            if self._free:  # the common case: no wait, no new connection
                return self._free.pop()
            self._waiting += 1
            try:
                available = self._condition.wait_for(self._can_take, self._timeout)
            finally:
                self._waiting -= 1
            if not available:
                raise StorageUnavailable(
                    f"all {self._limit} read connections stayed busy for {self._timeout:g} s"
                )
            if self._free:
                return self._free.pop()
            self._opening += 1
            generation = self._generation
        try:
            connection = self._connect()
        except Exception as e:
            raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
        finally:
            with self._condition:
                self._opening -= 1
                self._condition.notify()
        with self._condition:
            if generation == self._generation:
                self._every.append(connection)
        return generation, connection

    def _can_take(self) -> bool:
        return bool(self._free) or len(self._every) + self._opening < self._limit

    def give(self, held: tuple[int, Any]) -> None:
        with self._lock:
            current = held[0] == self._generation
            if current:
                self._free.append(held)
                if self._waiting:
                    self._condition.notify()
        if not current:
            # Of a generation close_all ended (closing twice is harmless).
            held[1].close()

    def close_all(self) -> None:
        """Close every connection, the lent ones too (their borrowers' next
        statement fails as on a closed database)."""
        with self._condition:
            self._generation += 1
            connections, self._every = self._every, []
            self._free.clear()
            self._condition.notify_all()
        for connection in connections:
            connection.close()


class _KeptConnection:
    """A write connection kept between transactions; ``lock`` guards it and is
    held by whoever uses it, from ``take`` until ``keep`` (or closing it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._connection: Connection | None = None
        self._since = 0.0

    def take(self, *, usable: Callable[[Connection, float], bool]) -> Connection | None:
        """The kept connection if ``usable`` (given it and its idle seconds) says so."""
        connection, self._connection = self._connection, None
        if connection is not None and not usable(connection, time.monotonic() - self._since):
            connection.close()
            return None
        return connection

    def keep(self, connection: Connection) -> None:
        self._connection, self._since = connection, time.monotonic()


def _quiet(connection: Connection) -> bool:
    """Whether an idle connection's socket has nothing to read, as a live one has.

    A server that ends a backend (a restart, ``pg_terminate_backend``) sends
    an error and closes the socket, which makes it readable: one ``select``,
    no round trip, tells that the connection would fail its next statement.
    """
    return _quiet_socket(connection.connection.driver_connection)


async def _answers(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection's server still answers, within the connect timeout."""
    try:
        await asyncio.wait_for(connection.execute("SELECT 1"), _CONNECT_TIMEOUT_S)
    except (psycopg.Error, TimeoutError):
        return False
    return True


def _quiet_socket(driver_connection: Any) -> bool:
    """``_quiet`` for a driver's connection."""
    try:
        readable, _, _ = select.select([driver_connection.fileno()], [], [], 0)
    except (OSError, ValueError, AttributeError, psycopg.Error):
        return False
    return not readable


# A constraint refusing a write, from SQLAlchemy or (raw_execute) from the driver.
INTEGRITY_ERRORS = (exc.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)

_DRIVER_OUTAGES = (
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Driver-level failures become ``StorageUnavailable`` (HTTP 503)."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as e:
        raise StorageUnavailable(f"database unavailable: {type(e.orig or e).__name__}") from e
    except exc.DisconnectionError as e:
        raise StorageUnavailable("database connection lost") from e
    except exc.TimeoutError as e:
        raise StorageUnavailable("database connection pool exhausted") from e
    except _DRIVER_OUTAGES as e:
        # Raised by raw_execute, which bypasses SQLAlchemy's wrapping.
        raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e


def raw_execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One ``?``-placeholder statement on the transaction's DBAPI cursor.

    For the statements every append group runs: SQLAlchemy's per-statement
    machinery (~0.1-0.2 ms here) was half the cost of a one-event append.
    """
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    finally:
        cursor.close()


# PostgreSQL's names for the column types of ``ledger.store.tables``, as a
# binary COPY declares them (subclasses first: BigInteger is an Integer).
_COPY_TYPES = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Text, "text"),
    (sa.String, "varchar"),
    (sa.LargeBinary, "bytea"),
)


@functools.cache
def _copy_types(table: sa.Table, sql: str) -> tuple[str, ...]:
    """The types of the columns ``sql`` (an ``INSERT INTO t (a, b) VALUES ...``)
    names, read from ``table``'s definition."""
    names = sql.partition("(")[2].partition(")")[0].split(",")
    kinds = []
    for name in names:
        column_type = table.c[name.strip()].type
        kinds.append(next(pg for kind, pg in _COPY_TYPES if isinstance(column_type, kind)))
    return tuple(kinds)


def raw_execute_many(
    conn: Connection,
    sql: str,
    rows: Sequence[Sequence[Any]],
    *,
    table: sa.Table | None = None,
) -> None:
    """An ``INSERT INTO t (a, b) VALUES (?, ?)`` of many rows on the DBAPI cursor
    (see ``raw_execute``).

    On SQLite the rows go as multi-row ``VALUES`` lists (``_sqlite_insert_many``).
    psycopg's ``executemany`` sends one statement per row through its
    pipeline, ~0.1 ms of Python each: 150 ms for the three tables of a
    500-event batch; a multi-row ``VALUES`` list spent as long parsing its
    placeholders. So on PostgreSQL the rows go by ``COPY ... FROM STDIN``, in binary when
    ``table`` (from ``ledger.store.tables``) gives the columns' types: a record's canonical
    bytes then travel as themselves rather than as hex text that both sides
    convert (500 records: 2.4 ms of client CPU and 1 ms of server time less).
    """
    if not rows:
        return
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            _sqlite_insert_many(cast(sqlite3.Cursor, cursor), sql, rows)
            return
        target = sql.partition(" VALUES ")[0].removeprefix("INSERT INTO ")
        binary = " (FORMAT BINARY)" if table is not None else ""
        with cursor.copy(f"COPY {target} FROM STDIN{binary}") as copy:
            if table is not None:
                copy.set_types(list(_copy_types(table, sql)))
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


# Rows per SQLite statement, at most: 128 rows of a record (10 columns) bind
# 1,280 values, well under any build's limit on variables (999 before 3.32).
_SQLITE_ROWS_PER_STATEMENT = 128


def _sqlite_insert_many(cursor: sqlite3.Cursor, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``sql`` (a one-row ``INSERT ... VALUES (?, ...)``) for every row, as few
    multi-row statements.

    ``executemany`` binds, steps and resets the statement once per row, and
    lets go of the GIL and takes it back each time: 3.3 us a record row
    against 2.3 us in statements of 100 rows (1,000-row groups into the
    records table, in one transaction). Statements hold a power of two of
    rows, largest first, so a table has at most eight texts (each prepared
    once, then found in the driver's statement cache) whatever the count.
    """
    head, values, tuple_text = sql.rpartition(" VALUES ")
    if not values or not tuple_text.startswith("(") or not tuple_text.endswith(")"):
        raise ValueError(f"not a one-row INSERT ... VALUES (...): {sql!r}")
    width = tuple_text.count("?")
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    size = _SQLITE_ROWS_PER_STATEMENT
    while size > 1 and size * width > limit:
        size //= 2
    at, count = 0, len(rows)
    while at < count:
        while size > count - at:
            size //= 2
        chunk = rows[at : at + size]
        cursor.execute(_multi_row(head, tuple_text, size), [v for row in chunk for v in row])
        at += size


@functools.lru_cache(maxsize=256)
def _multi_row(head: str, row: str, count: int) -> str:
    return f"{head} VALUES {', '.join([row] * count)}"
