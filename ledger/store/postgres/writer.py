"""PostgreSQL: a sealed append group written by one autocommit statement.

The usual group transaction (``Recorder._prepare_group``) locks the ledger's
head row, then runs a dozen statements, each a round trip, and COMMIT. The
row lock is held for all of them, so groups of one ledger follow each other
no faster than those round trips go.

A group whose outcome needs nothing from the database but the head is
sealed on the head this process last committed, and then written as one
statement: ``moved`` moves the head only if it is still the one sealed on
and the active signing keys are still those the checkpoint was signed
with; every other part inserts from ``moved``, so when the head moved
elsewhere (another server process appended, a key was rotated) the
statement writes nothing and reports 0, and the group is sealed again the
usual way. A constraint that refuses a row (an event id already used) fails
the whole statement, and the usual way then finds which request it was.
PostgreSQL runs every data-modifying part of a ``WITH`` exactly once, on one
snapshot, and, in autocommit, commits them together.

The records, tree nodes and checkpoint parts are the store's; each
registered projection adds one part per ``RowsInto`` it declares. Arrays
carry the rows (one text, whatever the group's size), so the server
prepares the statement once per connection and reuses it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ledger.store.backend import SealedGroup
from ledger.store.projections import RowsInto

__all__ = ["group_params", "group_statement"]

_MOVED = """\
WITH moved AS (
  UPDATE ledgers SET head_seq = %(new_seq)s, head_hash = %(new_hash)s,
    last_recorded_at = %(recorded_at)s
  WHERE id = %(ledger_id)s AND head_seq = %(old_seq)s AND head_hash = %(old_hash)s
    AND (SELECT string_agg(verifier_key, ' ' ORDER BY not_before, key_id)
      FROM signing_keys WHERE status = 'active') = %(active_keys)s
  RETURNING id
), new_records AS (
  INSERT INTO records (ledger_id, seq, event_id, type, party, topic, occurred_at,
    recorded_at, record_hash, canonical)
  SELECT moved.id, r.* FROM moved, unnest(%(r_seq)s::int8[], %(r_event_id)s::text[],
    %(r_type)s::text[], %(r_party)s::text[], %(r_topic)s::text[], %(r_occurred_at)s::text[],
    %(r_recorded_at)s::text[], %(r_hash)s::text[], %(r_canonical)s::bytea[]) AS r
)"""
_TREE = """\
, new_nodes AS (
  INSERT INTO tree_nodes (ledger_id, node_key, hash)
  SELECT moved.id, n.* FROM moved, unnest(%(n_key)s::int8[], %(n_hash)s::bytea[]) AS n
), new_checkpoint AS (
  INSERT INTO checkpoints (ledger_id, tree_size, root, head_hash, note, created_at)
  SELECT moved.id, %(new_seq)s, %(root)s, %(new_hash)s, %(note)s, %(recorded_at)s FROM moved
)
SELECT count(*) FROM moved"""

_RECORD_PARAMS = (
    "r_seq",
    "r_event_id",
    "r_type",
    "r_party",
    "r_topic",
    "r_occurred_at",
    "r_recorded_at",
    "r_hash",
    "r_canonical",
)

# Array element types for the columns of ``ledger.store.tables`` (subclasses first).
_ARRAY_TYPES = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.String, "text"),
    (sa.Text, "text"),
    (sa.LargeBinary, "bytea"),
)


def _array_type(table: sa.Table, column: str) -> str:
    kind = table.c[column].type
    return next(pg for python, pg in _ARRAY_TYPES if isinstance(kind, python))


def _param(index: int, field: str) -> str:
    return f"p{index}_{field}"


def _part(index: int, into: RowsInto) -> str:
    """The ``WITH`` part that inserts ``into``'s rows from their arrays."""
    arrays = ", ".join(
        f"%({_param(index, f)})s::{_array_type(into.table, f)}[]" for f in into.fields
    )
    values = ", ".join(into.values or tuple(f"u.{f}" for f in into.fields))
    joins = f", {into.joins}" if into.joins else ""
    conflict = f"\n  {into.conflict}" if into.conflict else ""
    return (
        f", p{index} AS (\n"
        f"  INSERT INTO {into.table.name} (ledger_id, {', '.join(into.columns)})\n"
        f"  SELECT moved.id, {values}\n"
        f"  FROM moved, unnest({arrays}) AS u({', '.join(into.fields)}){joins}{conflict}\n"
        ")"
    )


@functools.cache
def group_statement(targets: tuple[RowsInto, ...]) -> str:
    """The statement writing a group and the rows of ``targets`` (every
    registered projection's, in order): one text for the recorder's life."""
    return _MOVED + "".join(_part(i, into) for i, into in enumerate(targets)) + _TREE


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


def group_params(group: SealedGroup, targets: Sequence[RowsInto]) -> dict[str, Any]:
    """``group_statement(targets)``'s parameters for ``group``."""
    params: dict[str, Any] = {
        "ledger_id": group.ledger_id,
        "old_seq": group.old_seq,
        "old_hash": group.old_hash,
        "new_seq": group.new_seq,
        "new_hash": group.new_hash,
        "recorded_at": group.recorded_at,
        # Verifier keys hold no space (name+hex+base64), so one joins them unambiguously.
        "active_keys": " ".join(group.active_keys),
        "root": group.root,
        "note": group.note,
    }
    params.update(zip(_RECORD_PARAMS, _columns(group.records, 9), strict=True))
    n = _columns(group.nodes, 2)
    params["n_key"], params["n_hash"] = n[0], n[1]
    # By identity: each target is one object for the recorder's life.
    planned = {id(rows.into): rows.rows for rows in group.projected}
    for index, into in enumerate(targets):
        columns = _columns(planned.get(id(into), ()), len(into.fields))
        params.update(zip((_param(index, f) for f in into.fields), columns, strict=True))
    return params
