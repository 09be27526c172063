"""SQLite WAL checkpoints, run by a thread of their own rather than by a COMMIT.

In WAL mode a COMMIT appends the transaction's pages to the ``-wal`` file;
a checkpoint later copies them back into the database file. By default
SQLite checkpoints inside whichever COMMIT takes the WAL past 1,000 pages,
so every few append groups one COMMIT also reads those pages back, writes
them into the database and fsyncs it, while the event loop waits for it
(SQLite takes no next write transaction until the COMMIT returns). Here the
writer's connections checkpoint only as a backstop, at ``BACKSTOP_PAGES``;
``WalCheckpointer`` runs a PASSIVE checkpoint (what SQLite's automatic one
is) on its own connection shortly after commits, in C with the GIL
released, on the other core while the next group is written.

Under a steady stream of appends the WAL file grows to the backstop before
it starts over: SQLite rewinds a WAL only for a write transaction that
began with every frame already copied, and the next group begins as soon
as the last one committed, before this thread's checkpoint. The backstop's
checkpoint then has only the last few frames left to copy, so the ``-wal``
file stays up to ~40 MiB (at 4 KiB pages) and is then reused in place. A
backstop of SQLite's default 1,000 pages fsyncs the database file inside a
COMMIT every few groups, which ``scripts/bench.sh appends`` shows as lost
throughput on large batches.

Durability is unchanged: a commit is durable once its WAL frames are
synced, which the COMMIT still does (``synchronous=FULL``); a checkpoint
only moves durable pages, and a crash in the middle of one is recovered
from the WAL as before. Readers are unchanged too: PASSIVE waits for no
reader and no writer, and copies only what no reader still needs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["BACKSTOP_PAGES", "WalCheckpointer"]

log = logging.getLogger("ledger.store")

# The writer's own automatic checkpoint, in pages (40 MiB at 4 KiB): reached
# only if this thread falls far behind or is gone, so the WAL stays bounded.
BACKSTOP_PAGES = 10_000


class WalCheckpointer:
    """Checkpoints ``path``'s WAL soon after ``committed`` is called; ``close`` stops it.

    ``delay``: how long after a commit to checkpoint. Commits in that window
    share one checkpoint (and its fsync of the database file): under a
    stream of small appends, checkpoints come at most every ``delay``.
    """

    def __init__(self, path: str, *, delay: float = 0.05) -> None:
        self._path = path
        self._delay = delay
        self._wake = threading.Condition()
        self._due = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # completed, for tests and diagnostics

    def committed(self) -> None:
        """A write transaction committed: checkpoint soon (starts the thread on first use)."""
        with self._wake:
            if self._closing or self._due:
                # Already due: the thread will see it, so it is not woken
                # again (once per commit, it would take the GIL each time).
                return
            self._due = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ledger-wal-checkpoints", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (after the checkpoint it may be running); a later
        ``committed`` starts a new one, as for a database used again."""
        with self._wake:
            self._closing = True
            thread, self._thread = self._thread, None
            self._wake.notify()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():  # stuck in a checkpoint: it ends after it, not restarted
                return
        with self._wake:
            self._closing = False
            self._due = False

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                with self._wake:
                    while not self._due and not self._closing:
                        self._wake.wait()
                    # Commits until then join this checkpoint.
                    self._wake.wait_for(lambda: self._closing, timeout=self._delay)
                    if self._closing:
                        return
                    self._due = False
                try:
                    if connection is None:
                        # mode=rw: a checkpoint never creates a database file.
                        connection = sqlite3.connect(
                            f"{Path(self._path).resolve().as_uri()}?mode=rw",
                            uri=True,
                            isolation_level=None,
                            check_same_thread=False,
                        )
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:
                    # The writer's backstop still bounds the WAL; try again
                    # after the next commit, on a fresh connection.
                    log.warning("WAL checkpoint failed", exc_info=True)
                    if connection is not None:
                        connection.close()
                        connection = None
        finally:
            if connection is not None:
                connection.close()
