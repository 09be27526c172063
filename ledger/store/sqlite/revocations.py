"""SQLite's token revocation notices: an append-only file beside the database.

``revoke`` appends a line to ``<database file>-revocations`` after its
commit, and a server compares that file's identity and size (one ``stat``)
to what it saw before serving any cached principal. The file only
grows, so a revocation can never leave it looking unchanged; a file that
cannot be read turns caching off for the request. A token revoked by hand
in SQL stays cached until the server restarts.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Connection

__all__ = ["RevocationFile", "Stamp"]

# What a RevocationFile looked like: (device, inode, size), or () while it does not exist.
Stamp = tuple[int, ...]


class RevocationFile:
    """``ledger.store.backend.RevocationNotices`` by a file every server ``stat``s."""

    def __init__(self, database_file: str) -> None:
        self.path = Path(f"{database_file}-revocations")
        self._seen: Stamp | None = None
        self._on_revoked: Callable[[], None] = lambda: None

    def watch(
        self, *, on_listening: Callable[[bool], None], on_revoked: Callable[[], None]
    ) -> None:
        self._on_revoked = on_revoked
        self.create()
        self._seen = self.stamp()
        on_listening(True)

    def stop(self) -> None:
        """Nothing runs between checks."""

    def fresh(self) -> bool:
        """Whether cached principals may be served: False (having reported the
        revocation) when the file changed since the last check, or cannot be read."""
        stamp = self.stamp()
        if stamp is None:
            return False
        if stamp != self._seen:
            # Forgotten before any lookup that may fill the cache again, so a
            # later revocation always changes the stamp once more.
            self._on_revoked()
            self._seen = stamp
            return False
        return True

    def announce_in(self, conn: Connection) -> None:
        """Nothing to say inside the transaction: the file is written after it."""

    def announce(self, name: str, revoked_at: str) -> None:
        """Record a committed revocation: every server's next stamp differs."""
        self._append(f"{revoked_at} {name}\n".encode())

    def stamp(self) -> Stamp | None:
        """The file's current stamp; None if it cannot be read (then nothing is trusted)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return ()
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size)

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
