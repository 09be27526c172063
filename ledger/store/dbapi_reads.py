"""Reads on the pooled DBAPI connection, for the hot read paths (proofs, heads,
checkpoints, positions, pages).

SQLAlchemy's execution machinery costs more per statement than the indexed
lookups these paths make (``scripts/bench.sh proofs`` shows the rate they
reach), so they run fixed ``?``-placeholder SQL on the driver's cursor, in
autocommit: they need no transaction (see ``Database.read``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc

from ledger.core.errors import StorageUnavailable
from ledger.store.database import Database

__all__ = ["RawReader", "raw_read"]


class RawReader:
    """Runs ``?``-placeholder SQL on either driver."""

    def __init__(self, cursor: Any, *, qmark: bool) -> None:
        self._cursor = cursor
        self._qmark = qmark
        self.is_sqlite = qmark
        self._converted: dict[str, str] = {}

    def _sql(self, sql: str) -> str:
        if self._qmark:
            return sql
        converted = self._converted.get(sql)
        if converted is None:
            converted = self._converted[sql] = sql.replace("?", "%s")
        return converted

    def one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        self._cursor.execute(self._sql(sql), tuple(params))
        row = self._cursor.fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._sql(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]


@contextmanager
def raw_read(database: Database) -> Iterator[RawReader]:
    """A reader on a pooled connection (SQLite: a lent reader connection);
    driver errors become ``StorageUnavailable``."""
    dbapi = database.engine.dialect.loaded_dbapi
    if database.is_sqlite:
        held = database.lend_sqlite_reader()
        try:
            try:
                cursor = held[1].cursor()
            except Exception as e:
                raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
            try:
                yield RawReader(cursor, qmark=True)
            except dbapi.OperationalError as e:
                raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
            finally:
                cursor.close()
        finally:
            database.return_sqlite_reader(held)
        return
    try:
        pooled = database.engine.raw_connection()
    except sa_exc.TimeoutError as e:
        raise StorageUnavailable("every pooled database connection stayed busy") from e
    except Exception as e:
        raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
    driver = pooled.driver_connection
    try:
        if not database.is_sqlite:
            driver.autocommit = True  # type: ignore[union-attr]
        cursor = pooled.cursor()
        try:
            yield RawReader(cursor, qmark=database.is_sqlite)
        finally:
            cursor.close()
    except (dbapi.OperationalError, dbapi.InterfaceError) as e:
        pooled.invalidate(e)
        raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
    finally:
        if not database.is_sqlite and pooled.is_valid:
            try:
                driver.autocommit = False  # type: ignore[union-attr]
            except dbapi.Error:
                pooled.invalidate()
        pooled.close()
