"""PostgreSQL's token revocation notices: NOTIFY, heard by a LISTENing thread.

On PostgreSQL a token lookup is a network round trip from a worker thread;
under load it cost more than the append behind it. ``TokenStore`` may cache
the principals it resolved, but only while a ``RevocationWatch`` listens:
``revoke`` sends ``NOTIFY ledger_tokens`` in its transaction, PostgreSQL
delivers it when that commits, and the watch empties the cache the moment it
arrives (before a revoking CLI has even exited). Whenever the watch is not
sure it hears everything (not yet connected, its connection failed, a health
check failed) caching is off and every request looks its token up again.

Only what ``revoke`` announces is heard: a token revoked by hand in SQL
stays cached until the server restarts or its watch reconnects.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["APPLICATION_NAME", "CHANNEL", "RevocationNotify", "RevocationWatch"]

CHANNEL = "ledger_tokens"
APPLICATION_NAME = "ledger-revocations"  # names the watch in pg_stat_activity
log = logging.getLogger("ledger.store")

# A connection that died silently (a dropped network) would stop delivering
# without an error: it is probed this often, and caching stops on a failure.
HEALTH_CHECK_SECONDS = 2.0
RETRY_SECONDS = 1.0
STOP_SECONDS = 0.1


class RevocationWatch:
    """A daemon thread that LISTENs and reports to ``on_listening`` and ``on_revoked``."""

    def __init__(
        self,
        conninfo: str,
        *,
        on_listening: Callable[[bool], None],
        on_revoked: Callable[[], None],
    ) -> None:
        self._conninfo = conninfo
        self._on_listening = on_listening
        self._on_revoked = on_revoked
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-revocations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_SECONDS + 10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as e:
                log.warning("revocation watch lost its connection (%s); not caching tokens", e)
            finally:
                self._on_listening(False)
            self._stop.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=5, application_name=APPLICATION_NAME
        ) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            # Only now: a revocation committed before LISTEN took effect is in
            # the table, and the cache starts empty.
            self._on_listening(True)
            checked = time.monotonic()
            while not self._stop.is_set():
                # Short waits, so that stop() (a server shutting down) is prompt.
                for _ in conn.notifies(timeout=STOP_SECONDS, stop_after=1):
                    self._on_revoked()
                if time.monotonic() - checked >= HEALTH_CHECK_SECONDS:
                    conn.execute("SELECT 1")
                    checked = time.monotonic()


class RevocationNotify:
    """``ledger.store.backend.RevocationNotices`` by NOTIFY and a ``RevocationWatch``."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._watch: RevocationWatch | None = None

    def watch(
        self, *, on_listening: Callable[[bool], None], on_revoked: Callable[[], None]
    ) -> None:
        if self._watch is not None:
            return
        self._watch = RevocationWatch(
            self._conninfo, on_listening=on_listening, on_revoked=on_revoked
        )
        self._watch.start()

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None

    def fresh(self) -> bool:
        """The watch reports revocations as they come: nothing to check per request."""
        return True

    def announce_in(self, conn: Connection) -> None:
        """Delivered at COMMIT to every server's ``RevocationWatch``."""
        conn.execute(sa.text(f"NOTIFY {CHANNEL}"))

    def announce(self, name: str, revoked_at: str) -> None:
        """Already said by the NOTIFY its commit delivered."""
