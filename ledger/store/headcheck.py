"""Whether a ledger's head row agrees with its last stored records.

The recorder chains every new record onto the head row. If that row was
rolled back or edited, or the last record was rewritten behind the
append-only triggers, chaining on would seal the tampering into new
records (or, for a rolled-back row, collide with records already stored).
So before it seals onto a head it did not write itself, the recorder runs
``head_fault`` and refuses to append while it finds one.

The check reads the last two records and the last checkpoint (two
indexed reads): the last record must be at the head's seq, hash to the
head's hash (its stored hash and its bytes), have been recorded at the
head's ``last_recorded_at``, and link by ``prev`` to the record before it;
the last checkpoint must be of the head's tree size and name its hash.
"""

from __future__ import annotations

import logging

import orjson
from sqlalchemy.engine import Connection

from ledger.core.errors import IntegrityAlarm
from ledger.core.hashing import GENESIS_PREV, record_hash
from ledger.store.database import raw_execute

__all__ = ["StoredHead", "head_fault", "log_alarm"]

# Integrity alarms go to their own logger, so an operator can route them apart.
alarms = logging.getLogger("ledger.integrity")

_LAST_RECORDS = (
    "SELECT seq, record_hash, canonical FROM records WHERE ledger_id = ? ORDER BY seq DESC LIMIT 2"
)
_LAST_CHECKPOINT = (
    "SELECT tree_size, head_hash FROM checkpoints WHERE ledger_id = ?"
    " ORDER BY tree_size DESC LIMIT 1"
)

# (ledger id, head seq, head hash, last_recorded_at) as the ledgers row holds them.
StoredHead = tuple[int, int, str, str]


def head_fault(conn: Connection, ledger: str, head: StoredHead) -> IntegrityAlarm | None:
    """What is wrong with ``ledger``'s head row and last records, if anything."""
    ledger_id, seq, head_hash, last_recorded_at = head
    rows = raw_execute(conn, _LAST_RECORDS, [ledger_id])
    if not rows:
        if seq != 0 or head_hash != GENESIS_PREV:
            return _alarm(ledger, seq, f"the head row says seq {seq}, but no record is stored")
        return None
    last_seq, stored_hash, canonical = int(rows[0][0]), str(rows[0][1]), bytes(rows[0][2])
    if last_seq != seq:
        return _alarm(
            ledger,
            last_seq,
            f"the head row says seq {seq}, but the last stored record is seq {last_seq}",
        )
    if stored_hash != head_hash:
        return _alarm(
            ledger, seq, f"the head row's hash {head_hash} is not record {seq}'s {stored_hash}"
        )
    if record_hash(canonical) != stored_hash:
        return _alarm(ledger, seq, f"record {seq}'s bytes no longer hash to its stored hash")
    try:
        record = orjson.loads(canonical)
        prev, recorded_at, own_seq = record["prev"], record["recorded_at"], record["seq"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _alarm(ledger, seq, f"record {seq} is not a record")
    expected_prev = str(rows[1][1]) if len(rows) > 1 else GENESIS_PREV
    if own_seq != seq or (len(rows) > 1 and int(rows[1][0]) != seq - 1):
        return _alarm(ledger, seq, f"record {seq} is not stored at its own seq")
    if prev != expected_prev:
        return _alarm(ledger, seq, f"record {seq}'s prev is not the hash of the record before")
    if recorded_at != last_recorded_at:
        return _alarm(ledger, seq, f"the head row's last_recorded_at is not record {seq}'s")
    checkpoint = raw_execute(conn, _LAST_CHECKPOINT, [ledger_id])
    if not checkpoint or int(checkpoint[0][0]) != seq or str(checkpoint[0][1]) != head_hash:
        return _alarm(ledger, seq, f"the last checkpoint is not of the head at seq {seq}")
    return None


def _alarm(ledger: str, seq: int, reason: str) -> IntegrityAlarm:
    return IntegrityAlarm(
        f"ledger {ledger!r}: {reason}; appends to it are refused while this holds",
        seq=seq,
    )


def log_alarm(alarm: IntegrityAlarm) -> None:
    alarms.error("integrity alarm: seq %s: %s", alarm.seq, alarm.detail)
