"""PostgreSQL's ``ledger.store.backend.Backend``: head row locks, COPY, the
one-statement group write, and a connection kept for the hot transactions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine

from ledger.core.errors import StorageUnavailable
from ledger.store.backend import SealedGroup
from ledger.store.postgres import connections
from ledger.store.postgres.copy import copy_rows
from ledger.store.postgres.point_reads import PooledReaders
from ledger.store.postgres.revocations import RevocationNotify
from ledger.store.postgres.writer import group_params, group_statement
from ledger.store.projections import RowsInto

__all__ = ["PostgresBackend"]

log = logging.getLogger("ledger.store")

_MIGRATION_LOCK_ID = 0x1ED6E7  # pg_advisory_xact_lock key for schema upgrades

# PostgreSQL runs a data-modifying WITH exactly once, whether or not it is
# read: the head moves and the checkpoint is stored in one round trip.
_MOVE_HEAD = (
    "WITH moved AS (UPDATE ledgers SET head_seq = %s, head_hash = %s, last_recorded_at = %s"
    " WHERE id = %s) INSERT INTO checkpoints (ledger_id, tree_size, root, head_hash, note,"
    " created_at) VALUES (%s, %s, %s, %s, %s, %s)"
)


class PostgresBackend:
    inline_groups = False
    writes_groups = True
    head_lock = " FOR UPDATE"
    # Over a network a lookup would block the event loop.
    cheap_token_lookups = False
    derives_rows = False
    integrity_errors: tuple[type[Exception], ...] = (exc.IntegrityError, psycopg.IntegrityError)
    outage_errors: tuple[type[Exception], ...] = (
        psycopg.OperationalError,
        psycopg.InterfaceError,
    )
    # Only the hot transactions (append groups) share one kept connection.
    single_writer = False
    lateral_joins = True

    def __init__(self, url: sa.URL) -> None:
        self.url = url
        self.loop_connections = connections.LoopConnections(url)
        self._targets: tuple[RowsInto, ...] | None = None
        self._statement = ""

    # -- the append port ------------------------------------------------

    def insert_many(
        self,
        conn: Connection,
        sql: str,
        rows: Sequence[Sequence[Any]],
        table: sa.Table | None,
    ) -> None:
        copy_rows(conn, sql, rows, table)

    def move_head(self, conn: Connection, moved: Sequence[Any], checkpoint: Sequence[Any]) -> None:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(_MOVE_HEAD, (*moved, *checkpoint))
        finally:
            cursor.close()

    async def write_group(self, group: SealedGroup, projections: Sequence[RowsInto]) -> bool:
        """``ledger.store.postgres.writer``'s statement for ``group``."""
        if projections is not self._targets:
            self._statement = group_statement(tuple(projections))
            self._targets = tuple(projections) if isinstance(projections, tuple) else None
        try:
            row = await self.autocommit_row(self._statement, group_params(group, projections))
        except psycopg.IntegrityError:
            return False  # an id already used, most likely: the usual way names it
        except psycopg.Error:
            log.warning("the one-statement write failed; committing the usual way", exc_info=True)
            return False
        return row is not None and row[0] == 1

    async def autocommit_row(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """``LoopConnections.first_row``: one autocommit statement from the event loop."""
        return await self.loop_connections.first_row(sql, params)

    # -- SQL --------------------------------------------------------------

    def json_text(self, column: str, *path: str) -> str:
        steps = "".join(f"->'{step}'" for step in path[:-1])
        return f"convert_from({column}, 'UTF8')::jsonb{steps}->>'{path[-1]}'"

    def bytes_contain(self, column: str, needle: str) -> str:
        return f"position('{needle}'::bytea IN {column}) > 0"

    # -- the engine ------------------------------------------------------

    def engine_options(
        self, url: sa.URL, *, pool_size: int | None, pool_overflow: int | None, timeout: float
    ) -> dict[str, Any]:
        return {
            # pre-ping (a SELECT 1 per checkout) lets pools survive a server restart.
            "pool_pre_ping": True,
            # As many as the threads that may read at once (the 40 of AnyIO's
            # pool, plus the writer): an overflow connection is closed on
            # return, and under load every request would pay a new connection.
            "pool_size": 44 if pool_size is None else pool_size,
            "max_overflow": 16 if pool_overflow is None else pool_overflow,
            "pool_timeout": timeout,
            # A database that drops packets rather than refusing them must cost
            # a request seconds (then 503), not a TCP timeout; a URL may override.
            "connect_args": {"connect_timeout": connections.CONNECT_TIMEOUT_S},
        }

    def attach(self, engine: Engine) -> None:
        """PostgreSQL needs no hooks."""

    def read_options(self) -> Mapping[str, Any]:
        return {"isolation_level": "AUTOCOMMIT"}

    def point_reads(self, engine: Engine, *, limit: int, timeout: float) -> PooledReaders:
        return PooledReaders(engine)

    def write_options(self) -> Mapping[str, Any]:
        return {}

    def reusable(self, connection: Connection, idle: float) -> bool:
        return idle <= connections.HOT_IDLE_SECONDS and connections.quiet(connection)

    def committed(self) -> None:
        """Nothing follows a commit."""

    def commit_failed(self, error: Exception) -> Exception | None:
        if not isinstance(error, (exc.OperationalError, exc.InterfaceError)):
            return None
        # The connection died with COMMIT in flight: it may have committed.
        # Still 503 (never retried here, never acknowledged), but say so, so
        # the client retries with its Idempotency-Key rather than assuming
        # nothing was written.
        return StorageUnavailable(
            "the database connection failed during COMMIT: the write may "
            "or may not have been recorded; retry with the same "
            "Idempotency-Key to find out"
        )

    def lock_migrations(self, conn: Connection) -> None:
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))

    def revocations(self, url: sa.URL) -> RevocationNotify:
        return RevocationNotify(connections.conninfo(url))

    def close(self) -> None:
        self.loop_connections.close()
