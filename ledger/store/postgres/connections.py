"""PostgreSQL connections kept between statements: the event loops' own
autocommit connections, and the check that an idle one still works."""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import Mapping
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.errors import StorageUnavailable

__all__ = ["CONNECT_TIMEOUT_S", "HOT_IDLE_SECONDS", "LoopConnections", "conninfo", "quiet"]

# A kept connection idle for longer is checked by a round trip before use.
HOT_IDLE_SECONDS = 1.0
CONNECT_TIMEOUT_S = 5


def conninfo(url: sa.URL) -> str:
    """``url`` as libpq's connection string (psycopg's own, not SQLAlchemy's)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class LoopConnections:
    """Per event loop, the connection its one-statement writes use, with the
    time it was last used; a psycopg async connection belongs to one loop."""

    def __init__(self, url: sa.URL) -> None:
        self._url = url
        self._kept: dict[asyncio.AbstractEventLoop, tuple[psycopg.AsyncConnection[Any], float]] = {}

    async def first_row(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """From an event loop: one statement in its own transaction, without
        holding a thread; its first row.

        The loop keeps one connection between statements, checked with
        ``quiet`` before each use and, once idle for ``HOT_IDLE_SECONDS``,
        by a round trip that must come back within the connect timeout (a
        server that stopped answering would otherwise hold the statement, and
        every append queued behind it, for as long as TCP retries). A failure
        of the connection is ``StorageUnavailable``; once the statement was
        sent it may or may not have committed, and the error says so. A
        statement the server refused raises the driver's error: nothing was
        written.
        """
        loop = asyncio.get_running_loop()
        kept = self._kept.pop(loop, None)
        connection = None
        if kept is not None:
            connection, since = kept
            if connection.closed or not _quiet_socket(connection):
                await connection.close()
                connection = None
            elif time.monotonic() - since > HOT_IDLE_SECONDS and not await _answers(connection):
                connection.pgconn.finish()
                connection = None
        if connection is None:
            self._end_closed_loops_connections()
            timeout: dict[str, Any] = {}
            if "connect_timeout" not in self._url.query:
                timeout["connect_timeout"] = CONNECT_TIMEOUT_S
            try:
                connection = await psycopg.AsyncConnection.connect(
                    conninfo(self._url), autocommit=True, **timeout
                )
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                raise StorageUnavailable(f"database unavailable: {type(e).__name__}") from e
        try:
            cursor = await connection.execute(sql, params)
            row = await cursor.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            await connection.close()
            raise StorageUnavailable(
                # Only requests without an Idempotency-Key are written this way
                # (Recorder._write_group): a replay cannot tell them.
                "the database connection failed during a write: it may or may not "
                "have been recorded; look for the event in the ledger before sending "
                "it again (with an Idempotency-Key, a retry finds out by itself)"
            ) from e
        except psycopg.Error:
            self._keep(loop, connection)  # refused, rolled back: still good
            raise
        except BaseException:  # cancelled mid-statement: the connection's state is unknown
            connection.pgconn.finish()
            raise
        self._keep(loop, connection)
        return None if row is None else tuple(row)

    def _keep(
        self, loop: asyncio.AbstractEventLoop, connection: psycopg.AsyncConnection[Any]
    ) -> None:
        """Keep ``connection`` for ``loop``, unless a statement that ran meanwhile
        already kept one: one a loop is enough."""
        if loop in self._kept:
            connection.pgconn.finish()
        else:
            self._kept[loop] = (connection, time.monotonic())

    def _end_closed_loops_connections(self) -> None:
        for loop in [loop for loop in self._kept if loop.is_closed()]:
            connection, _since = self._kept.pop(loop)
            connection.pgconn.finish()  # what AsyncConnection.close does, without a loop

    def close(self) -> None:
        # Their loops may be gone: end them as AsyncConnection.close does, without awaiting.
        kept = list(self._kept.values())
        self._kept.clear()
        for connection, _since in kept:
            connection.pgconn.finish()


def quiet(connection: Connection) -> bool:
    """Whether an idle connection's socket has nothing to read, as a live one has.

    A server that ends a backend (a restart, ``pg_terminate_backend``) sends
    an error and closes the socket, which makes it readable: one ``select``,
    no round trip, tells that the connection would fail its next statement.
    """
    return _quiet_socket(connection.connection.driver_connection)


async def _answers(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection's server still answers, within the connect timeout."""
    try:
        await asyncio.wait_for(connection.execute("SELECT 1"), CONNECT_TIMEOUT_S)
    except (psycopg.Error, TimeoutError):
        return False
    return True


def _quiet_socket(driver_connection: Any) -> bool:
    """``quiet`` for a driver's connection."""
    try:
        readable, _, _ = select.select([driver_connection.fileno()], [], [], 0)
    except (OSError, ValueError, AttributeError, psycopg.Error):
        return False
    return not readable
