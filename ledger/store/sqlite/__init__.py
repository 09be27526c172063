"""SQLite, the embedded default: appends prepared on the event loop and
sealed ahead, WAL mode with ``synchronous=FULL``, multi-row inserts."""

from __future__ import annotations

import sqlalchemy as sa

from ledger.store.sqlite.backend import SqliteBackend

__all__ = ["SqliteBackend", "make_backend"]


def make_backend(url: sa.URL) -> SqliteBackend:
    return SqliteBackend(url)
