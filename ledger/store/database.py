"""The database: one engine, the transaction discipline the store relies on,
and schema migration; what differs between engines is its ``Backend``'s."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from ledger.core.errors import StorageUnavailable
from ledger.store.backend import Backend, backend_for, backend_of, driver_outages, register

__all__ = [
    "Database",
    "WriteTransaction",
    "alembic_config",
    "raw_execute",
    "raw_execute_many",
]

log = logging.getLogger("ledger.store")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


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
        backend: Backend,
        lock: threading.Lock | None,
        keep: Callable[[Connection], None] | None = None,
    ) -> None:
        self.connection = connection
        self._backend = backend
        self._lock = lock
        self._keep = keep
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
        self._backend.committed()

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
        except Exception as e:
            instead = self._backend.commit_failed(e)
            if instead is None:
                raise
            raise instead from e

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
        16 on PostgreSQL, 5 and 0 on SQLite); ``read_connections``: the
        connections a backend that lends its own keeps for point reads
        (``Backend.point_reads``). A caller that finds
        them all in use waits up to ``pool_timeout`` seconds, then gets
        ``StorageUnavailable``."""
        self.url = sa.engine.make_url(url)
        self.backend = backend_for(self.url)
        options = self.backend.engine_options(
            self.url, pool_size=pool_size, pool_overflow=pool_overflow, timeout=pool_timeout
        )
        self.engine = sa.create_engine(self.url, echo=echo, **options)
        self.backend.attach(self.engine)
        register(self.engine, self.backend)
        self._read_options = self.backend.read_options()
        self._write_options = self.backend.write_options()
        # The writer keeps one connection between transactions: a pool
        # checkout and its options cost more than BEGIN itself. With a single
        # writer every write shares it; otherwise only the hot transactions
        # do (see begin_write).
        self._writer = _KeptConnection()
        self.point_reads = self.backend.point_reads(
            self.engine, limit=read_connections, timeout=pool_timeout
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads, without a transaction around them.

        Stored records, tree nodes and checkpoints never change and a head
        only grows, so statements that each see the latest commit never
        contradict each other; skipping BEGIN/COMMIT halves a proof's round
        trips.
        """
        with translate_errors(), self.engine.connect() as connection:
            connection.execution_options(**self._read_options)
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
        in use (``Backend.reusable``): a pool checkout pings the server first,
        a round trip as long as a statement, once per group. A connection
        idle for longer, or whose server ended it, is closed and a new one
        comes from the pool (with its ping). With a single writer
        (``Backend.single_writer``) every write shares the one writer's
        connection, under the write lock.
        """
        writer = self._writer
        backend = self.backend
        with translate_errors():
            if backend.single_writer:
                writer.lock.acquire()
            elif not hot or not writer.lock.acquire(blocking=False):
                return WriteTransaction(self.engine.connect(), backend=backend, lock=None)
            try:
                connection = writer.take(usable=backend.reusable)
                if connection is None:
                    connection = self.engine.connect()
                    if self._write_options:
                        connection.execution_options(**self._write_options)
            except BaseException:
                writer.lock.release()
                raise
            return WriteTransaction(connection, backend=backend, lock=writer.lock, keep=writer.keep)

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision``; safe when several processes start at once."""
        with self.write() as connection:
            self.backend.lock_migrations(connection)
            command.upgrade(alembic_config(connection), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.read() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def ping(self) -> None:
        with self.read() as connection:
            connection.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.backend.close()
        with self._writer.lock:
            kept = self._writer.take(usable=lambda _connection, _idle: True)
        if kept is not None:
            kept.close()
        self.point_reads.close_all()  # new ones open if used again
        self.engine.dispose()


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
    except driver_outages() as e:
        # Raised by raw_execute, which bypasses SQLAlchemy's wrapping.
        raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e


def raw_execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One ``?``-placeholder statement on the transaction's DBAPI cursor.

    For the statements every append group runs: SQLAlchemy's per-statement
    machinery would cost as much as a one-event append's own work.
    """
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    finally:
        cursor.close()


def raw_execute_many(
    conn: Connection,
    sql: str,
    rows: Sequence[Sequence[Any]],
    *,
    table: sa.Table | None = None,
) -> None:
    """An ``INSERT INTO t (a, b) VALUES (?, ?)`` of many rows, as the backend
    inserts many rows (``Backend.insert_many``); ``table`` (from
    ``ledger.store.tables``) gives the columns' types."""
    if rows:
        backend_of(conn).insert_many(conn, sql, rows, table)
