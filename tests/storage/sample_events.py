"""Position drafts and filled ledgers shared by the storage tests."""

from __future__ import annotations

import uuid

from ledger.core.records import EventDraft
from ledger.service import LedgerService


def drafts(count: int, *, start: int = 0, summary: str = "#{n}") -> list[EventDraft]:
    """``count`` Ukrainian offers on signing; ``summary`` is formatted with ``n``."""
    return [
        EventDraft.of(
            id=str(uuid.uuid4()),
            type="position.stated",
            occurred_at="2025-02-24T00:00:00Z",
            party="UA",
            topic="signing",
            data={"stance": "offer", "summary": summary.format(n=n)},
            source={"name": "Reuters", "kind": "media"},
        )
        for n in range(start, start + count)
    ]


def fill(
    service: LedgerService, ledger: str, sizes: list[int], *, summary: str = "#{n}"
) -> list[bytes]:
    """Create ``ledger`` and append batches of ``sizes``; return the stored lines."""
    service.create_ledger(ledger)
    start = 0
    for size in sizes:
        service.recorder.append(ledger, drafts(size, start=start, summary=summary), actor="t")
        start += size
    return list(service.iter_records(ledger))
