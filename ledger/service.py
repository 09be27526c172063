"""Use cases: create ledgers, append, read. No HTTP, no SQL.

The HTTP API and the CLI both call this module, so an event imported from a
file passes exactly the checks of an event posted over HTTP.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from ledger.core.canonical import canonical_bytes
from ledger.core.errors import IdempotencyInFlight, InvalidEvent, InvalidParameter
from ledger.core.records import LEDGER_NAME_PATTERN
from ledger.intake import Intake
from ledger.store.recorder import AppendResult, LedgerInfo, Recorder

__all__ = ["AppendOutcome", "LedgerService"]

# Printable ASCII without spaces at the ends: keys travel in an HTTP header.
_IDEMPOTENCY_KEY = re.compile(r"\A[\x21-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]?\Z")


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    result: AppendResult
    is_batch: bool


class LedgerService:
    def __init__(self, *, recorder: Recorder, intake: Intake) -> None:
        self.recorder = recorder
        self.intake = intake
        self._in_flight: set[tuple[str, str]] = set()
        self._in_flight_lock = threading.Lock()

    def create_ledger(self, name: object) -> LedgerInfo:
        if not isinstance(name, str) or not LEDGER_NAME_PATTERN.match(name):
            raise InvalidEvent(
                "must match ^[a-z0-9][a-z0-9-]{0,62}$ (lowercase letters, digits, hyphens)",
                field="name",
            )
        return self.recorder.create_ledger(name)

    def list_ledgers(self) -> list[LedgerInfo]:
        return self.recorder.list_ledgers()

    def get_ledger(self, name: str) -> LedgerInfo:
        return self.recorder.get_ledger(name)

    def append(
        self,
        ledger: str,
        body: bytes,
        *,
        actor: str,
        idempotency_key: str | None = None,
        expected_seq: int | None = None,
    ) -> AppendOutcome:
        """Validate a posted body and append it; all events or none."""
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise InvalidParameter(
                "must be 1-255 printable ASCII characters", field="Idempotency-Key"
            )
        if expected_seq is not None and expected_seq < 0:
            raise InvalidParameter("must be >= 0", field="expected_seq")
        parsed = self.intake.parse(body)
        request_sha256 = None
        if idempotency_key is not None:
            # Hash the canonical form: the same events re-serialized are the same request.
            request_sha256 = hashlib.sha256(canonical_bytes(parsed.value)).hexdigest()
        with self._claim(ledger, idempotency_key):
            result = self.recorder.append(
                ledger,
                parsed.drafts,
                actor=actor,
                idempotency_key=idempotency_key,
                request_sha256=request_sha256,
                expected_seq=expected_seq,
            )
        return AppendOutcome(result=result, is_batch=parsed.is_batch)

    def _claim(self, ledger: str, key: str | None) -> _Claim:
        return _Claim(self, (ledger, key) if key is not None else None)

    def read_page(self, ledger: str, *, after_seq: int, limit: int) -> tuple[list[bytes], int]:
        return self.recorder.read_page(ledger, after_seq=after_seq, limit=limit)

    def iter_records(self, ledger: str, *, after_seq: int = 0) -> Iterator[bytes]:
        return self.recorder.iter_records(ledger, after_seq=after_seq)

    def get_record(self, ledger: str, seq: int) -> bytes:
        return self.recorder.get_record(ledger, seq)


class _Claim:
    """Marks an Idempotency-Key as in flight in this process (409 for a twin)."""

    def __init__(self, service: LedgerService, slot: tuple[str, str] | None) -> None:
        self.service = service
        self.slot = slot

    def __enter__(self) -> None:
        if self.slot is None:
            return
        with self.service._in_flight_lock:
            if self.slot in self.service._in_flight:
                raise IdempotencyInFlight(
                    "a request with this Idempotency-Key is still being processed; retry later"
                )
            self.service._in_flight.add(self.slot)

    def __exit__(self, *_exc: object) -> None:
        if self.slot is not None:
            with self.service._in_flight_lock:
                self.service._in_flight.discard(self.slot)
