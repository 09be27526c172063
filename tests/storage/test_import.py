"""``ledger import`` (``ledger.cli.import_events``) appends through the
service's checks, exactly as an append posted over HTTP."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.cli import import_events
from ledger.core.errors import InvalidEvent
from ledger.core.records import EventDraft
from ledger.runtime import Runtime
from ledger.service import LedgerService
from tests.conftest import position, settings_for


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[LedgerService]:
    """A server configured to take at most two events per append."""
    running = Runtime.start(settings_for(database_url, tmp_path, max_batch=2))
    yield running.service
    running.close()


def drafts(service: LedgerService, count: int) -> list[EventDraft]:
    days = (f"2025-03-{day:02d}" for day in range(1, count + 1))
    return [service.intake.draft(position(occurred_at=day)) for day in days]


def test_a_batch_over_the_configured_limit_is_refused_as_over_http(
    service: LedgerService,
) -> None:
    with pytest.raises(InvalidEvent, match="at most 2 events, this one 3"):
        import_events(service, "talks", drafts(service, 3), actor="cli", quiet=True, batches=[3])
    assert service.get_ledger("talks").size == 0  # created, and nothing appended


def test_a_file_is_imported_in_appends_the_limit_allows(service: LedgerService) -> None:
    assert import_events(service, "talks", drafts(service, 5), actor="cli", quiet=True) == 5
    lines, _ = service.read_page("talks", after_seq=0, limit=10)
    records = [json.loads(line) for line in lines]
    # The records of one append share its recorded_at.
    appends = [
        len(list(group)) for _, group in itertools.groupby(records, lambda r: r["recorded_at"])
    ]
    assert appends == [2, 2, 1]
    assert {r["actor"] for r in records} == {"cli"}
