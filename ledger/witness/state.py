"""A witness's state: its name, the logs it follows, the latest checkpoint it cosigned.

One SQLite file, ``<dir>/witness.db``, through the standard ``sqlite3``
module: the witness is a program of its own, not a client of the ledger's
store. WAL and ``synchronous=FULL``, so a cosignature is answered only after
the checkpoint it covers is on disk; ``cosign`` runs its check and its write
in one ``BEGIN IMMEDIATE`` transaction, so concurrent requests (from threads
or from a second process on the same directory) are decided one at a time,
each against the state the one before it committed (C2SP tlog-witness: a
check and a store that are not atomic could roll a log back).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.core.errors import UnknownLog
from ledger.core.signing import VerifierKey
from ledger.core.witnessing import CheckpointNote, origin_hash

__all__ = ["DATABASE_FILE", "SCHEMA_VERSION", "CosignedCheckpoint", "WitnessState"]

DATABASE_FILE = "witness.db"

# PRAGMA user_version of the layout below; a file of another version is refused.
SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE witness_identity (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        name TEXT NOT NULL
    )""",
    """CREATE TABLE witness_logs (
        origin TEXT NOT NULL,
        verifier_key TEXT NOT NULL,
        PRIMARY KEY (origin, verifier_key)
    )""",
    # size is TEXT: a tree size may exceed SQLite's signed 64-bit INTEGER.
    """CREATE TABLE witness_latest (
        origin TEXT PRIMARY KEY,
        origin_hash TEXT NOT NULL UNIQUE,
        size TEXT NOT NULL,
        note TEXT NOT NULL,
        cosignature TEXT NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class CosignedCheckpoint:
    """The latest checkpoint cosigned for an origin: the note as verified
    (with the log's signatures) and the cosignature line answered for it."""

    note: CheckpointNote
    cosignature: str

    def to_text(self) -> str:
        """The monitoring view: the checkpoint, the log's and the witness's signatures."""
        return self.note.to_text() + self.cosignature


class WitnessState:
    """The witness database; one connection, used by one thread at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")

    @classmethod
    def create(cls, directory: Path, name: str) -> WitnessState:
        state = cls(directory / DATABASE_FILE)
        with state._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("INSERT INTO witness_identity (only_row, name) VALUES (1, ?)", (name,))
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return state

    @classmethod
    def open(cls, directory: Path) -> WitnessState:
        """The state in ``directory``; ``ValueError`` if it is not this layout's."""
        path = directory / DATABASE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} holds no witness ({DATABASE_FILE} is missing)")
        try:
            state = cls(path)
            (version,) = state._connection.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error as e:
            raise ValueError(f"{path} is not a readable SQLite database: {e}") from None
        if version != SCHEMA_VERSION:
            state.close()
            raise ValueError(f"{path} is witness state version {version}, not {SCHEMA_VERSION}")
        return state

    def close(self) -> None:
        self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def name(self) -> str:
        with self._transaction() as db:
            row = db.execute("SELECT name FROM witness_identity").fetchone()
        if row is None:
            raise FileNotFoundError(f"{self.path} holds no witness identity")
        return str(row[0])

    def add_log(self, origin: str, key: VerifierKey) -> bool:
        """Trust ``key`` for ``origin``; False if it already was."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO witness_logs (origin, verifier_key) VALUES (?, ?)",
                (origin, key.to_string()),
            )
            return cursor.rowcount == 1

    def logs(self) -> dict[str, list[VerifierKey]]:
        with self._transaction() as db:
            rows = db.execute(
                "SELECT origin, verifier_key FROM witness_logs ORDER BY origin, verifier_key"
            ).fetchall()
        found: dict[str, list[VerifierKey]] = {}
        for origin, key in rows:
            found.setdefault(origin, []).append(VerifierKey.from_string(key))
        return found

    def cosign(
        self,
        origin: str,
        decide: Callable[[list[VerifierKey], CosignedCheckpoint | None], CosignedCheckpoint],
    ) -> CosignedCheckpoint:
        """Decide and record one add-checkpoint, atomically.

        ``decide`` gets the keys trusted for ``origin`` and the latest
        checkpoint cosigned for it, and raises to refuse, or returns the
        newly cosigned checkpoint, which is the latest once this returns
        (committed, on disk). ``UnknownLog`` when no key is trusted for ``origin``.
        """
        with self._transaction() as db:
            keys = [
                VerifierKey.from_string(row[0])
                for row in db.execute(
                    "SELECT verifier_key FROM witness_logs WHERE origin = ?", (origin,)
                )
            ]
            if not keys:
                raise UnknownLog(f"this witness does not follow the log {origin}")
            cosigned = decide(keys, self._latest(db, "origin", origin))
            db.execute(
                "INSERT INTO witness_latest (origin, origin_hash, size, note, cosignature)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET"
                " size = excluded.size, note = excluded.note, cosignature = excluded.cosignature",
                (
                    origin,
                    origin_hash(origin),
                    str(cosigned.note.size),
                    cosigned.note.to_text(),
                    cosigned.cosignature,
                ),
            )
            return cosigned

    def latest(self, origin: str) -> CosignedCheckpoint | None:
        with self._transaction() as db:
            return self._latest(db, "origin", origin)

    def latest_by_hash(self, digest: str) -> CosignedCheckpoint | None:
        """The latest cosigned checkpoint of the log whose origin hashes to ``digest``."""
        with self._transaction() as db:
            return self._latest(db, "origin_hash", digest)

    @staticmethod
    def _latest(db: sqlite3.Connection, column: str, value: str) -> CosignedCheckpoint | None:
        assert column in ("origin", "origin_hash")
        row = db.execute(
            f"SELECT note, cosignature FROM witness_latest WHERE {column} = ?", (value,)
        ).fetchone()
        if row is None:
            return None
        return CosignedCheckpoint(note=CheckpointNote.parse(row[0]), cosignature=row[1])
