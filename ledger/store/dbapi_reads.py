"""Point reads on a DBAPI cursor the backend lends (``Backend.point_reads``),
for the hot read paths: proofs, heads, checkpoints, positions, pages.

SQLAlchemy's execution machinery costs more per statement than the indexed
lookups these paths make (``scripts/bench.sh proofs`` shows the rate they
reach), so they run fixed ``?``-placeholder SQL on the driver's cursor, in
autocommit: they need no transaction (see ``Database.read``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ledger.store.database import Database

__all__ = ["RawReader", "raw_read"]


class RawReader:
    """Runs ``?``-placeholder SQL on either driver."""

    def __init__(self, cursor: Any, *, qmark: bool, lateral_joins: bool) -> None:
        self._cursor = cursor
        self._qmark = qmark
        # Whether the engine has LATERAL joins (``Backend.lateral_joins``).
        self.lateral_joins = lateral_joins
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
    """A reader on a connection for point reads (``Backend.point_reads``);
    driver errors become ``StorageUnavailable``."""
    with database.point_reads.cursor() as cursor:
        yield RawReader(
            cursor,
            qmark=database.engine.dialect.paramstyle == "qmark",
            lateral_joins=database.backend.lateral_joins,
        )
