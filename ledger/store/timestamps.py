"""RFC 3161 timestamps of checkpoints (``checkpoint_timestamps``, migration 0013).

Rows are evidence from an outside authority, written once and never
changed (the migration's guards refuse UPDATE and DELETE); each holds the
authority's whole TimeStampResp, DER, over the body of the checkpoint of
``tree_size``. Reads go through the point-read cursor like the other
checkpoint reads (``ledger.store.dbapi_reads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ledger.core.errors import NotFound
from ledger.store.database import Database
from ledger.store.dbapi_reads import RawReader, raw_read
from ledger.store.tables import checkpoint_timestamps, ledgers

__all__ = [
    "StoredTimestamp",
    "insert_timestamp",
    "newest_timestamp",
    "timestamp_at",
    "timestamps_up_to",
]

_COLUMNS = "tree_size, response, attested_at, authority, received_at"
_SELECT_ID = "SELECT id FROM ledgers WHERE name = ?"
_SELECT_NEWEST = (
    f"SELECT {_COLUMNS} FROM checkpoint_timestamps WHERE ledger_id = ? AND tree_size <= ?"
    " ORDER BY tree_size DESC LIMIT 1"
)
_SELECT_AT = f"SELECT {_COLUMNS} FROM checkpoint_timestamps WHERE ledger_id = ? AND tree_size = ?"
_SELECT_UP_TO = (
    f"SELECT {_COLUMNS} FROM checkpoint_timestamps WHERE ledger_id = ? AND tree_size <= ?"
    " ORDER BY tree_size"
)
# Larger than any tree size (a BIGINT): "no bound".
_NO_BOUND = 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTimestamp:
    """One row: the authority's reply over the body of the checkpoint of ``tree_size``."""

    tree_size: int
    response: bytes
    #: genTime as RFC 3339 UTC, read from the token when it was stored.
    attested_at: str
    #: The authority's URL the reply came from.
    authority: str
    received_at: str


def _row(row: tuple[Any, ...]) -> StoredTimestamp:
    tree_size, response, attested_at, authority, received_at = row
    return StoredTimestamp(
        tree_size=int(tree_size),
        response=bytes(response),
        attested_at=str(attested_at),
        authority=str(authority),
        received_at=str(received_at),
    )


def _ledger_id(reader: RawReader, ledger: str) -> int:
    row = reader.one(_SELECT_ID, [ledger])
    if row is None:
        raise NotFound(f"no ledger named {ledger!r}")
    return int(row[0])


def insert_timestamp(database: Database, ledger: str, timestamp: StoredTimestamp) -> bool:
    """Store ``timestamp`` for ``ledger``; False when that tree size already has one.

    One short write transaction: on SQLite it takes the writer's lock for a
    single INSERT, as long as one small append group holds it.
    """
    try:
        return _insert(database, ledger, timestamp)
    except sa.exc.IntegrityError:
        # Another server process on the same database stored this size first.
        return False


def _insert(database: Database, ledger: str, timestamp: StoredTimestamp) -> bool:
    with database.write() as conn:
        ledger_id = conn.execute(sa.select(ledgers.c.id).where(ledgers.c.name == ledger)).scalar()
        if ledger_id is None:
            raise NotFound(f"no ledger named {ledger!r}")
        present = conn.execute(
            sa.select(checkpoint_timestamps.c.tree_size).where(
                checkpoint_timestamps.c.ledger_id == ledger_id,
                checkpoint_timestamps.c.tree_size == timestamp.tree_size,
            )
        ).first()
        if present is not None:
            return False
        conn.execute(
            checkpoint_timestamps.insert().values(
                ledger_id=ledger_id,
                tree_size=timestamp.tree_size,
                response=timestamp.response,
                attested_at=timestamp.attested_at,
                authority=timestamp.authority,
                received_at=timestamp.received_at,
            )
        )
    return True


def newest_timestamp(
    database: Database, ledger: str, *, at_most: int | None = None
) -> StoredTimestamp | None:
    """The timestamp of the largest tree size at or below ``at_most`` (default: any)."""
    with raw_read(database) as reader:
        ledger_id = _ledger_id(reader, ledger)
        row = reader.one(_SELECT_NEWEST, [ledger_id, _NO_BOUND if at_most is None else at_most])
    return None if row is None else _row(row)


def timestamp_at(database: Database, ledger: str, tree_size: int) -> StoredTimestamp | None:
    """The timestamp of exactly ``tree_size``, if one is stored."""
    with raw_read(database) as reader:
        ledger_id = _ledger_id(reader, ledger)
        row = reader.one(_SELECT_AT, [ledger_id, tree_size])
    return None if row is None else _row(row)


def timestamps_up_to(
    database: Database, ledger: str, *, at_most: int | None = None
) -> list[StoredTimestamp]:
    """Every timestamp of ``ledger`` at or below ``at_most``, by tree size."""
    with raw_read(database) as reader:
        ledger_id = _ledger_id(reader, ledger)
        rows = reader.all(_SELECT_UP_TO, [ledger_id, _NO_BOUND if at_most is None else at_most])
    return [_row(row) for row in rows]
