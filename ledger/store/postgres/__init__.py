"""PostgreSQL: appends written as one autocommit statement from the event loop
when they can be, COPY for bulk rows, revocations by LISTEN/NOTIFY."""

from __future__ import annotations

import sqlalchemy as sa

from ledger.store.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend", "make_backend"]


def make_backend(url: sa.URL) -> PostgresBackend:
    return PostgresBackend(url)
