"""Reads about one ledger for the service and the web pages: its seq as known
at a moment, the registrations that name its parties and topics, the fixes of
a record, and the key that signs for it now.

Each function borrows one connection for all its statements (see
``ledger.store.dbapi_reads``), so a page or a snapshot costs no more round
trips than the statements it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.core.signing import Signer
from ledger.store.database import Database
from ledger.store.dbapi_reads import raw_read
from ledger.store.recorder import Recorder

__all__ = ["LedgerAt", "fixes_of", "ledger_at", "newest_signer", "registrations_after"]

_SELECT_HEAD = "SELECT id, head_seq FROM ledgers WHERE name = ?"
_SELECT_ID = "SELECT id FROM ledgers WHERE name = ?"
_SELECT_KNOWN_BY = "SELECT MAX(seq) FROM records WHERE ledger_id = ? AND recorded_at <= ?"
_SELECT_REGISTRATIONS = (
    "SELECT seq, canonical FROM records WHERE ledger_id = ? AND seq > ?"
    " AND type IN ('party.registered', 'topic.registered') ORDER BY seq"
)
_SELECT_FIXES_OF = (
    "SELECT f.fix_seq, r.canonical FROM record_fixes f JOIN records r"
    " ON r.ledger_id = f.ledger_id AND r.seq = f.fix_seq"
    " WHERE f.ledger_id = ? AND f.target_seq = ? ORDER BY f.fix_seq"
)


@dataclass(frozen=True, slots=True)
class LedgerAt:
    """A ledger's id and head, and the last seq recorded by a moment if asked."""

    ledger_id: int
    head: int
    recorded_by: int | None


def ledger_at(database: Database, ledger: str, *, recorded_by: str | None) -> LedgerAt | None:
    """The ledger named ``ledger`` (None if there is none), with the last seq
    recorded at or before ``recorded_by`` (a stored ``recorded_at``; 0 when none was)."""
    with raw_read(database) as reader:
        row = reader.one(_SELECT_HEAD, [ledger])
        if row is None:
            return None
        ledger_id, head = int(row[0]), int(row[1])
        if recorded_by is None:
            return LedgerAt(ledger_id, head, None)
        found = reader.one(_SELECT_KNOWN_BY, [ledger_id, recorded_by])
    seq = int(found[0]) if found and found[0] is not None else 0
    return LedgerAt(ledger_id, head, seq)


def registrations_after(
    database: Database, ledger: str, after_seq: int
) -> list[tuple[int, bytes]] | None:
    """(seq, canonical) of the ``party.registered`` and ``topic.registered``
    records after ``after_seq``, in seq order; None if no ledger has the name."""
    with raw_read(database) as reader:
        row = reader.one(_SELECT_ID, [ledger])
        if row is None:
            return None
        rows = reader.all(_SELECT_REGISTRATIONS, [int(row[0]), after_seq])
    return [(int(seq), bytes(canonical)) for seq, canonical in rows]


def fixes_of(database: Database, ledger: str, seq: int) -> list[tuple[int, bytes]]:
    """(seq, canonical) of every correction and retraction of record ``seq``, in order."""
    with raw_read(database) as reader:
        row = reader.one(_SELECT_ID, [ledger])
        rows = reader.all(_SELECT_FIXES_OF, [int(row[0]), seq]) if row else []
    return [(int(fix_seq), bytes(canonical)) for fix_seq, canonical in rows]


def newest_signer(recorder: Recorder) -> Signer:
    """The newest active key's signer: the one that signs documents served now."""
    with recorder.db.read() as conn:
        return recorder.signers(conn)[-1]
