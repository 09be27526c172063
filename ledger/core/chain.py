"""The hash chain of format §2, verified one canonical line at a time.

``ChainVerifier`` consumes records as the bytes a verifier was given (an
export's ``records.jsonl`` line, or a server response re-encoded) and checks,
in format §5 order: the bytes are canonical, the record is well
formed, ``ledger`` matches, ``seq`` runs gap-free, ``recorded_at`` never
decreases, and ``prev`` is the hash of the record before. It holds O(1) state,
so a million-record ledger verifies in constant memory.

Each line is first offered to ``record_lines.parse_line``, which accepts the
lines it is sure of at a fraction of the cost; the rest take the strict
reading, so a bad line is refused with the same reason and seq either way.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.core.canonical import canonical_bytes
from ledger.core.errors import ChainBroken, InputError, MalformedRecord, PrevMismatch
from ledger.core.hashing import GENESIS_PREV, record_hash
from ledger.core.jsonvalues import loads_strict
from ledger.core.record_lines import RunSummary, parse_line
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
        obj = parse_line(line)
        record = Record(**obj) if obj is not None else self._read_strictly(line)
        self._link(record.ledger, record.seq, record.recorded_at, record.prev, line)
        return record

    def check_line(self, line: bytes) -> None:
        """``add_line`` for a caller that does not need the record back."""
        obj = parse_line(line)
        if obj is None:
            self.add_line(line)
            return
        self._link(obj["ledger"], obj["seq"], obj["recorded_at"], obj["prev"], line)

    def add_record(self, record: Record) -> Record:
        """Check a record already parsed (its canonical bytes are recomputed)."""
        self._link(record.ledger, record.seq, record.recorded_at, record.prev, record.canonical())
        return record

    def link_run(self, run: RunSummary) -> bool:
        """Append a run ``check_run`` passed, if it links to the records before it.

        ``False`` (nothing appended) when it does not: the caller then feeds
        the run's lines one by one, so the failure is reported as usual.
        """
        if run.first_prev != self.head_hash or run.first_recorded_at < self._last_recorded_at:
            return False
        self.head_hash = run.head_hash
        self._last_recorded_at = run.last_recorded_at
        self.next_seq += run.lines
        return True

    def _read_strictly(self, line: bytes) -> Record:
        # The reference reading, for lines ``parse_line`` is unsure of: it
        # either accepts them after all or names what is wrong.
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
        return record

    def _link(self, ledger: str, seq: int, recorded_at: str, prev: str, canonical: bytes) -> None:
        if ledger != self.ledger:
            raise ChainBroken(f"record belongs to ledger {ledger!r}, not {self.ledger!r}", seq=seq)
        if seq != self.next_seq:
            raise ChainBroken(f"expected seq {self.next_seq}, found seq {seq}", seq=self.next_seq)
        if recorded_at < self._last_recorded_at:
            raise ChainBroken("recorded_at decreases", seq=seq)
        if prev != self.head_hash:
            raise PrevMismatch("prev does not match the hash of the previous record", seq=seq)
        self.head_hash = record_hash(canonical)
        self._last_recorded_at = recorded_at
        self.next_seq += 1


def verify_chain(
    lines: Iterable[bytes], *, ledger: str, from_seq: int = 1, first_prev: str = GENESIS_PREV
) -> str:
    """Verify canonical lines in order; return the head hash or raise."""
    verifier = ChainVerifier(ledger=ledger, from_seq=from_seq, first_prev=first_prev)
    for line in lines:
        verifier.check_line(line)
    return verifier.head_hash
