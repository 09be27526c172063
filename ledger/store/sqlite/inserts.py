"""Many rows into one SQLite table as few multi-row ``INSERT ... VALUES`` statements."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any

__all__ = ["insert_many", "multi_row"]

# Rows per SQLite statement, at most: 128 rows of a record (10 columns) bind
# 1,280 values, well under any build's limit on variables (999 before 3.32).
_ROWS_PER_STATEMENT = 128


def insert_many(cursor: sqlite3.Cursor, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``sql`` (a one-row ``INSERT ... VALUES (?, ...)``) for every row, as few
    multi-row statements.

    ``executemany`` binds, steps and resets the statement once per row, and
    lets go of the GIL and takes it back each time; statements of many rows
    cost a third less a row (``scripts/bench.sh appends``). Statements hold a
    power of two of rows, largest first, so a table has at most eight texts
    (each prepared once, then found in the driver's statement cache)
    whatever the count.
    """
    head, values, tuple_text = sql.rpartition(" VALUES ")
    if not values or not tuple_text.startswith("(") or not tuple_text.endswith(")"):
        raise ValueError(f"not a one-row INSERT ... VALUES (...): {sql!r}")
    width = tuple_text.count("?")
    limit = cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    size = _ROWS_PER_STATEMENT
    while size > 1 and size * width > limit:
        size //= 2
    at, count = 0, len(rows)
    while at < count:
        while size > count - at:
            size //= 2
        chunk = rows[at : at + size]
        cursor.execute(multi_row(head, tuple_text, size), [v for row in chunk for v in row])
        at += size


@functools.lru_cache(maxsize=256)
def multi_row(head: str, row: str, count: int) -> str:
    return f"{head} VALUES {', '.join([row] * count)}"
