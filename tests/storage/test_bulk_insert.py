"""``raw_execute_many``: every row stored, in order, however many there are.

On SQLite the rows go as multi-row ``VALUES`` statements of a power of two
of rows each; on PostgreSQL by ``COPY``. Both must store exactly the rows given.
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.store.database import Database, raw_execute, raw_execute_many
from ledger.store.sqlite.inserts import insert_many as _sqlite_insert_many
from ledger.store.sqlite.inserts import multi_row as _multi_row
from ledger.store.tables import tree_nodes

_INSERT = "INSERT INTO tree_nodes (ledger_id, node_key, hash) VALUES (?, ?, ?)"


def stored(database: Database) -> list[tuple[int, int, bytes]]:
    with database.read() as conn:
        rows = conn.execute(
            sa.select(tree_nodes.c.ledger_id, tree_nodes.c.node_key, tree_nodes.c.hash).order_by(
                tree_nodes.c.node_key
            )
        ).all()
    return [(r[0], r[1], bytes(r[2])) for r in rows]


def insert(database: Database, rows: list[tuple[int, int, bytes]]) -> None:
    with database.write() as conn:
        raw_execute_many(conn, _INSERT, rows, table=tree_nodes)


def a_ledger(database: Database) -> int:
    with database.write() as conn:
        raw_execute(
            conn,
            "INSERT INTO ledgers (name, created_at, head_seq, head_hash, last_recorded_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ("bulk", "2026-01-01T00:00:00Z", 0, "0" * 64, ""),
        )
        return int(raw_execute(conn, "SELECT id FROM ledgers WHERE name = ?", ("bulk",))[0][0])


@pytest.mark.parametrize("count", [0, 1, 2, 127, 128, 129, 255, 300, 1_000])
def test_every_row_is_stored_whatever_the_count(database: Database, count: int) -> None:
    ledger_id = a_ledger(database)
    rows = [(ledger_id, 10 * n, bytes([n % 256]) * 32) for n in range(count)]
    insert(database, rows)
    assert stored(database) == rows


def test_a_constraint_refuses_the_whole_transaction(database: Database) -> None:
    ledger_id = a_ledger(database)
    rows = [(ledger_id, n, b"\x00" * 32) for n in range(200)]
    rows[150] = rows[3]  # a duplicate key deep inside the second statement
    with pytest.raises(database.backend.integrity_errors):
        insert(database, rows)
    assert stored(database) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(min_value=0, max_value=600), limit=st.integers(min_value=3, max_value=999))
def test_sqlite_statements_stay_within_the_variable_limit(count: int, limit: int) -> None:
    """A build that allows fewer variables gets smaller statements, never an error."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (a INTEGER, b INTEGER, c BLOB)")
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    rows = [(n, -n, bytes([n % 256])) for n in range(count)]
    _sqlite_insert_many(connection.cursor(), "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", rows)
    assert connection.execute("SELECT a, b, c FROM t ORDER BY rowid").fetchall() == rows


def test_statements_hold_a_power_of_two_of_rows() -> None:
    """So a table has a handful of statement texts, each prepared once."""
    texts: list[str] = []

    class Recording:
        connection = sqlite3.connect(":memory:")

        def execute(self, sql: str, params: list[object]) -> None:
            texts.append(sql)
            assert sql.count("?") == len(params)

    _sqlite_insert_many(Recording(), "INSERT INTO t (a, b) VALUES (?, ?)", [(1, 2)] * 300)  # type: ignore[arg-type]
    assert [text.count("(?, ?)") for text in texts] == [128, 128, 32, 8, 4]
    assert texts[0] == _multi_row("INSERT INTO t (a, b)", "(?, ?)", 128)


def test_a_statement_that_is_not_a_one_row_insert_is_refused() -> None:
    connection = sqlite3.connect(":memory:")
    with pytest.raises(ValueError, match="one-row INSERT"):
        _sqlite_insert_many(connection.cursor(), "UPDATE t SET a = ?", [(1,)])
