"""Token revocations pushed by PostgreSQL, so servers may cache principals.

On PostgreSQL a token lookup is a network round trip from a worker thread;
under load it cost more than the append behind it. ``TokenStore`` may cache
the principals it resolved, but only while a ``RevocationWatch`` listens:
``revoke`` sends ``NOTIFY ledger_tokens`` in its transaction, PostgreSQL
delivers it when that commits, and the watch empties the cache the moment it
arrives (before a revoking CLI has even exited). Whenever the watch is not
sure it hears everything (not yet connected, its connection failed, a health
check failed) caching is off and every request looks its token up again.

On SQLite the same cache is kept against a ``RevocationFile``: ``revoke``
appends a line to ``<database file>-revocations`` after its commit, and a
server compares that file's identity and size (one ``stat``, ~1 us) to what
it saw before serving any cached principal. The file only grows, so a
revocation can never leave it looking unchanged; a file that cannot be
read turns caching off for the request. A lookup is a local read of ~15 us,
but with the scopes parsed, it was a tenth of a single-event append.

Both announce only what ``revoke`` writes: a token revoked by hand in SQL
stays cached until the server restarts (or, on PostgreSQL, its watch
reconnects).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

__all__ = ["APPLICATION_NAME", "CHANNEL", "RevocationFile", "RevocationWatch", "Stamp"]

CHANNEL = "ledger_tokens"
APPLICATION_NAME = "ledger-revocations"  # names the watch in pg_stat_activity
log = logging.getLogger("ledger.store")

# A connection that died silently (a dropped network) would stop delivering
# without an error: it is probed this often, and caching stops on a failure.
HEALTH_CHECK_SECONDS = 2.0
RETRY_SECONDS = 1.0
STOP_SECONDS = 0.1


# What a RevocationFile looked like: (device, inode, size), or () while it does not exist.
Stamp = tuple[int, ...]


class RevocationFile:
    """SQLite's revocation announcements: an append-only file beside the database."""

    def __init__(self, database_file: str) -> None:
        self.path = Path(f"{database_file}-revocations")

    def stamp(self) -> Stamp | None:
        """The file's current stamp; None if it cannot be read (then nothing is trusted)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return ()
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size)

    def announce(self, name: str, revoked_at: str) -> None:
        """Record a committed revocation: every server's next stamp differs."""
        self._append(f"{revoked_at} {name}\n".encode())

    def create(self) -> None:
        """Make the file if it is absent (a stamp is cheapest for a file that exists)."""
        with contextlib.suppress(OSError):
            self._append(b"")

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


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
