"""The hash chain of SPEC §2, verified one canonical line at a time.

``ChainVerifier`` consumes records as the bytes a verifier was given (an
export's ``records.jsonl`` line, or a server response re-encoded) and checks,
in SPEC §5 step 2-3 order: the bytes are canonical, the record is well
formed, ``ledger`` matches, ``seq`` runs gap-free, ``recorded_at`` never
decreases, and ``prev`` is the hash of the record before. It holds O(1) state,
so a million-record ledger verifies in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.core.canonical import canonical_bytes
from ledger.core.errors import ChainBroken, InputError, MalformedRecord
from ledger.core.hashing import GENESIS_PREV, record_hash
from ledger.core.jsonvalues import loads_strict
from ledger.core.records import Record

__all__ = ["ChainVerifier", "verify_chain"]


class ChainVerifier:
    """Incremental verifier of a contiguous run of records."""

    def __init__(self, *, ledger: str, from_seq: int = 1, first_prev: str = GENESIS_PREV) -> None:
        self.ledger = ledger
        self.next_seq = from_seq
        self.head_hash = first_prev
        self._last_recorded_at = ""

    @property
    def count_seen(self) -> int:
        return self.next_seq - 1

    def add_line(self, line: bytes) -> Record:
        """Check one record given as its canonical bytes (no trailing newline)."""
        expected = self.next_seq
        try:
            obj = loads_strict(line)
        except InputError as e:
            raise MalformedRecord(f"not strict JSON: {e}", seq=expected) from e
        try:
            record = Record.from_dict(obj)
        except MalformedRecord as e:
            # Report the position in the run, even when the line's own seq is unreadable.
            raise MalformedRecord(e.reason, seq=expected) from e
        if canonical_bytes(obj) != line:
            raise MalformedRecord("bytes are not RFC 8785 canonical", seq=record.seq)
        return self._link(record, line)

    def add_record(self, record: Record) -> Record:
        """Check a record already parsed (its canonical bytes are recomputed)."""
        return self._link(record, record.canonical())

    def _link(self, record: Record, canonical: bytes) -> Record:
        if record.ledger != self.ledger:
            raise ChainBroken(
                f"record belongs to ledger {record.ledger!r}, not {self.ledger!r}", seq=record.seq
            )
        if record.seq != self.next_seq:
            raise ChainBroken(
                f"expected seq {self.next_seq}, found seq {record.seq}", seq=self.next_seq
            )
        if record.recorded_at < self._last_recorded_at:
            raise ChainBroken("recorded_at decreases", seq=record.seq)
        if record.prev != self.head_hash:
            raise ChainBroken("prev does not match the hash of the previous record", seq=record.seq)
        self.head_hash = record_hash(canonical)
        self._last_recorded_at = record.recorded_at
        self.next_seq += 1
        return record


def verify_chain(
    lines: Iterable[bytes], *, ledger: str, from_seq: int = 1, first_prev: str = GENESIS_PREV
) -> str:
    """Verify canonical lines in order; return the head hash or raise."""
    verifier = ChainVerifier(ledger=ledger, from_seq=from_seq, first_prev=first_prev)
    for line in lines:
        verifier.add_line(line)
    return verifier.head_hash
