"""The sources projection (docs/sources.md) answers what the fold says, on every backend."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core.documents import DocumentInfo
from ledger.core.errors import InvalidEvent, NotFound
from ledger.core.sources import fold, source_detail, sources_list
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.service import LedgerService
from ledger.store.database import alembic_config
from tests.core.test_sources import CNN, DOCUMENTS, NYT, correct, ledgers, retract, stated
from tests.storage.test_positions_projection import append_all, records_of

_names = (f"s{n}" for n in itertools.count())


def hold_documents(service: LedgerService, ledger: str) -> None:
    """The archived copies the generated sources may cite."""
    for sha256, text in DOCUMENTS.items():
        info = DocumentInfo(sha256=sha256, size=len(text), media_type="text/plain")
        service.put_document(ledger, info, [text])


LEDGER = "sourced"


def citation_rows(service: LedgerService) -> list[tuple[Any, ...]]:
    with service.recorder.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM source_citations ORDER BY ledger_id, target_seq, known_from")
        )
        return [tuple(r) for r in rows]


def assert_equals_the_fold(service: LedgerService, ledger: str) -> None:
    records = records_of(service, ledger)
    view = fold(records)
    assert service.sources(ledger) == sources_list(ledger, len(records), view)
    for name, citations in view.items():
        assert service.source(ledger, name) == source_detail(ledger, len(records), name, citations)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=ledgers(), cuts=st.lists(st.integers(min_value=1, max_value=25), max_size=4))
def test_the_served_view_equals_the_fold_and_a_rebuild_reproduces_the_rows(
    service: LedgerService, events: list[dict[str, Any]], cuts: list[int]
) -> None:
    ledger = next(_names)
    service.create_ledger(ledger)
    hold_documents(service, ledger)
    append_all(service, ledger, events, cuts, created=True)
    assert_equals_the_fold(service, ledger)
    incremental = citation_rows(service)
    assert service.rebuild_projections(ledger, progress=lambda _done: None) == len(events)
    assert citation_rows(service) == incremental


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=ledgers(),
    cuts=st.lists(st.integers(1, 25), min_size=4, max_size=12),
    wave=st.integers(1, 4),
)
def test_waves_committed_from_the_event_loop_project_what_a_rebuild_derives(
    service: LedgerService, events: list[dict[str, Any]], cuts: list[int], wave: int
) -> None:
    """Concurrent requests share a group, which on PostgreSQL is mostly written
    as one statement (``ledger.store.postgres.writer``)."""
    ledger = next(_names)
    service.create_ledger(ledger)
    hold_documents(service, ledger)
    bounds = sorted({0, len(events), *(c for c in cuts if 0 < c < len(events))})
    bodies = [json.dumps(events[start:end]).encode() for start, end in itertools.pairwise(bounds)]

    async def commit_in_waves() -> None:
        for first in range(0, len(bodies), wave):
            prepared = [
                service.prepare_append(ledger, body, actor="t")
                for body in bodies[first : first + wave]
            ]
            await asyncio.gather(*(service.commit_append(p) for p in prepared))

    asyncio.run(commit_in_waves())
    assert_equals_the_fold(service, ledger)
    incremental = citation_rows(service)
    service.rebuild_projections(ledger, progress=lambda _done: None)
    assert citation_rows(service) == incremental


@pytest.fixture
def fixed(service: LedgerService) -> LedgerService:
    # 1 cites CNN, 2 cites nothing, 3 moves 1 to the NYT, 4 gives 2 CNN,
    # 5 retracts 2: a batch holding its own targets.
    events = [stated(CNN), stated(None), correct(1, {"source": NYT}), correct(2, {"source": CNN})]
    append_all(service, LEDGER, [*events, retract(2)], [2])
    return service


def test_corrections_and_retractions_move_and_flag_citations(fixed: LedgerService) -> None:
    cnn = fixed.source(LEDGER, "CNN")
    assert cnn["records"] == 0 and cnn["parties"] == []
    assert cnn["citations"] == [
        {
            "seq": 2,
            "id": cnn["citations"][0]["id"],
            "type": "position.withdrawn",
            "party": "US",
            "topic": "revenue-share",
            "occurred_at": "2025-02-10T00:00:00Z",
            "kind": "media",
            "url": "https://cnn.com/a",
            "corrected_by": [4],
            "retracted_by": 5,
        }
    ]
    nyt = fixed.source(LEDGER, "The New York Times")
    assert [(c["seq"], c["corrected_by"]) for c in nyt["citations"]] == [(1, [3])]
    assert [s["name"] for s in fixed.sources(LEDGER)["sources"]] == ["CNN", "The New York Times"]
    assert_equals_the_fold(fixed, LEDGER)


def test_an_unknown_source_or_ledger_is_not_found(fixed: LedgerService) -> None:
    with pytest.raises(NotFound, match="'Reuters'"):
        fixed.source(LEDGER, "Reuters")
    with pytest.raises(NotFound, match="'a\\\\x00b'"):
        fixed.source(LEDGER, "a\x00b")
    with pytest.raises(NotFound):
        fixed.sources("nowhere")


def test_a_name_holding_nul_is_stored_and_found(service: LedgerService) -> None:
    # JSON text may hold NUL; PostgreSQL text may not, so names are stored as bytes.
    odd = {"name": "a\x00b", "kind": "media", "url": "https://example.org/\x00"}
    append_all(service, "odd", [stated(odd)], [])
    (citation,) = service.source("odd", "a\x00b")["citations"]
    assert citation["url"] == odd["url"]
    assert_equals_the_fold(service, "odd")


def test_a_refused_fix_writes_no_row(fixed: LedgerService) -> None:
    before = citation_rows(fixed)
    with pytest.raises(InvalidEvent):
        fixed.append(LEDGER, json.dumps([stated(CNN), retract(2)]).encode(), actor="t")
    assert citation_rows(fixed) == before


EDITS = {
    "UPDATE": "UPDATE source_citations SET name = 'forged' WHERE target_seq = 1",
    "DELETE": "DELETE FROM source_citations WHERE target_seq = 1",
}


@pytest.mark.parametrize("operation", sorted(EDITS))
def test_the_rows_refuse_direct_edits(fixed: LedgerService, operation: str) -> None:
    before = citation_rows(fixed)
    with (
        pytest.raises(sa.exc.DBAPIError, match=f"{operation} on source_citations is forbidden"),
        fixed.recorder.db.engine.begin() as conn,
    ):
        conn.execute(sa.text(EDITS[operation]))
    assert citation_rows(fixed) == before


def forge(runtime: Runtime, sql: str) -> None:
    """What someone with database access does: drop the guards, then edit."""
    engine = runtime.database.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER source_citations_no_update"))
            conn.execute(sa.text("DROP TRIGGER source_citations_no_delete"))
        else:
            conn.execute(sa.text("DROP TRIGGER source_citations_guard ON source_citations"))
            conn.execute(sa.text("DROP TRIGGER source_citations_no_delete ON source_citations"))
        conn.execute(sa.text(sql))


TAMPERING = {
    "renamed": (
        "UPDATE source_citations SET name = 'Reuters' WHERE target_seq = 1 AND known_from = 1",
        ["seq 1 known from 1", "has name 'Reuters'", "the records give 'CNN'"],
    ),
    "url": (
        "UPDATE source_citations SET url = NULL WHERE target_seq = 2 AND known_from = 4",
        ["source 'CNN'", "seq 2 known from 4", "has url None"],
    ),
    "unretracted": (
        "DELETE FROM source_citations WHERE target_seq = 2 AND known_from = 5",
        ["seq 2 known from 5 is missing"],
    ),
    "invented": (
        "INSERT INTO source_citations (ledger_id, target_seq, known_from, fix, name, kind,"
        " occurred_at) SELECT id, 1, 6, 'corrected', 'Reuters', 'media',"
        " '2025-02-10T00:00:00Z' FROM ledgers",
        ["source 'Reuters'", "seq 1 known from 6 is not made by the records"],
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_the_audit_names_an_edited_row(runtime: Runtime, case: str) -> None:
    events = [stated(CNN), stated(None), correct(1, {"source": NYT}), correct(2, {"source": CNN})]
    append_all(runtime.service, LEDGER, [*events, retract(2)], [2])
    assert check_ledger(runtime, LEDGER).valid
    sql, names = TAMPERING[case]
    forge(runtime, sql)
    report = check_ledger(runtime, LEDGER)
    assert not report.valid
    reason = str(report.reason)
    assert f"source_citations of ledger {LEDGER}" in reason, reason
    for name in names:
        assert name in reason, reason


def test_migration_0012_projects_the_ledgers_already_stored(runtime: Runtime) -> None:
    events = [stated(CNN), stated(None), correct(1, {"source": NYT}), correct(2, {"source": CNN})]
    append_all(runtime.service, LEDGER, [*events, retract(2)], [2])
    appended = citation_rows(runtime.service)
    with runtime.database.write() as conn:
        command.downgrade(alembic_config(conn), "0011")
    runtime.database.migrate("head")
    assert citation_rows(runtime.service) == appended
    assert check_ledger(runtime, LEDGER).valid


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_SOURCES = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "name": _TEXT,
        "kind": st.sampled_from(["official", "media", "anonymous", "document"]),
        "url": _TEXT,
        "reported_at": st.just("2025-02-24"),
    },
)


@given(
    seq=st.integers(1, 2**53 - 1),
    party=st.none() | st.just("US"),
    topic=st.none() | st.just("fund"),
    source=_SOURCES,
)
def test_the_rows_an_append_writes_are_the_cores_rows(
    seq: int, party: str | None, topic: str | None, source: dict[str, Any] | None
) -> None:
    """The append's quick row builder writes exactly the core's row of a new record."""
    from ledger.core.records import EventDraft, SealedDraft
    from ledger.store import sources

    draft = EventDraft.of(
        id="0190b6a4-0000-7000-8000-000000000000",
        type="position.stated",
        occurred_at="2025-02-24T00:00:00Z",
        data={"stance": "demand", "summary": "s"},
        party=party,
        topic=topic,
        source=source,
    )
    sealed = SealedDraft(seq, draft)
    reference = sources._new_row(sealed)
    expected = None if reference is None else sources._db_values(reference)
    assert sources._new_values(sealed) == expected
