"""Many rows into one PostgreSQL table by ``COPY ... FROM STDIN``, binary
when the table's column types are known."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["copy_rows"]

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


def copy_rows(
    conn: Connection, sql: str, rows: Sequence[Sequence[Any]], table: sa.Table | None
) -> None:
    """The rows of ``sql`` (a one-row ``INSERT INTO t (a, b) VALUES (?, ?)``) by COPY.

    psycopg's ``executemany`` sends one statement per row through its
    pipeline, with Python work for each, and a multi-row ``VALUES`` list
    spends as long parsing its placeholders. COPY is binary when ``table`` (from
    ``ledger.store.tables``) gives the columns' types: a record's canonical
    bytes then travel as themselves rather than as hex text that both sides
    convert.
    """
    cursor = conn.connection.cursor()
    try:
        target = sql.partition(" VALUES ")[0].removeprefix("INSERT INTO ")
        binary = " (FORMAT BINARY)" if table is not None else ""
        with cursor.copy(f"COPY {target} FROM STDIN{binary}") as copy:
            if table is not None:
                copy.set_types(list(_copy_types(table, sql)))
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()
