"""Reads of the positions projection (format §6) for the service: snapshots and
histories of a ledger as known at a seq, each on one borrowed connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.store.database import Database
from ledger.store.dbapi_reads import raw_read
from ledger.store.positions import PositionsProjection

__all__ = ["Positions", "position_history", "position_snapshots"]

# (state, claims) as ``PositionsProjection.snapshot`` returns them.
Positions = tuple[dict[str, Any], dict[str, Any]]


def position_snapshots(
    database: Database,
    projection: PositionsProjection,
    ledger_id: int,
    *,
    as_of: Sequence[str | None],
    known_at: int,
    party: str | None = None,
) -> list[Positions]:
    """The snapshot at each valid time of ``as_of`` (None: now), as known at ``known_at``."""
    with raw_read(database) as reader:
        return [
            projection.snapshot(reader, ledger_id, as_of=bound, known_at=known_at, party=party)
            for bound in as_of
        ]


def position_history(
    database: Database,
    projection: PositionsProjection,
    ledger_id: int,
    *,
    known_at: int,
    party: str | None,
    topic: str | None,
) -> list[dict[str, Any]]:
    """``PositionsProjection.history``: statements on (party, topic) as known at ``known_at``."""
    with raw_read(database) as reader:
        return projection.history(reader, ledger_id, known_at=known_at, party=party, topic=topic)
