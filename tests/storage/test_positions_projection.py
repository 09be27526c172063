"""The positions projection tables answer exactly what the format §6 fold says."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core.errors import InvalidEvent
from ledger.core.jsonvalues import loads_strict
from ledger.core.positions import fold, verify_snapshot_signature
from ledger.core.records import Record
from ledger.core.signing import VerifierKey
from ledger.service import LedgerService
from tests.core.test_positions import DEMO, days, ledgers

_names = (f"p{n}" for n in itertools.count())


def append_all(
    service: LedgerService,
    ledger: str,
    events: list[dict[str, Any]],
    cuts: list[int],
    *,
    created: bool = False,
) -> None:
    """Append ``events`` in batches split at ``cuts`` (to a new ledger, unless ``created``)."""
    if not created:
        service.create_ledger(ledger)
    bounds = sorted({0, len(events), *(c for c in cuts if 0 < c < len(events))})
    for start, end in itertools.pairwise(bounds):
        service.append(ledger, json.dumps(events[start:end]).encode(), actor="t")


def records_of(service: LedgerService, ledger: str) -> list[Record]:
    return [Record.from_dict(loads_strict(line)) for line in service.iter_records(ledger)]


def with_sources(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for event in events:
        if event["type"] == "position.stated":
            event.setdefault("source", {"name": "AP", "kind": "media"})
    return events


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=ledgers().map(with_sources),
    cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=4),
    queries=st.lists(
        st.tuples(st.none() | days, st.none() | st.floats(min_value=0, max_value=1)),
        min_size=1,
        max_size=4,
    ),
)
def test_the_server_snapshot_equals_the_pure_fold(
    service: LedgerService,
    events: list[dict[str, Any]],
    cuts: list[int],
    queries: list[tuple[str | None, float | None]],
) -> None:
    ledger = next(_names)
    append_all(service, ledger, events, cuts)
    records = records_of(service, ledger)
    for as_of, fraction in queries:
        known_at = None if fraction is None else int(fraction * len(records))
        document = service.snapshot(
            ledger, as_of=as_of, known_at=None if known_at is None else str(known_at)
        )
        bound = None if as_of is None else f"{as_of}T23:59:59Z"
        expected = fold(records, as_of=bound, known_at=known_at)
        assert document["state"] == expected.state_dict()
        assert document["claims"] == expected.claims_dict()
        assert document["known_at"] == (len(records) if known_at is None else known_at)
        assert document["tree_size"] == document["known_at"]


def test_the_demo_snapshots_and_their_signature(service: LedgerService) -> None:
    events = [json.loads(line) for line in DEMO.read_text().splitlines()]
    append_all(service, "demo", events, [])
    late = service.snapshot("demo", as_of="2025-02-24")
    assert late["as_of"] == "2025-02-24T23:59:59Z"
    assert late["state"]["US"]["security-guarantees"]["stance"] == "oppose"
    assert late["state"]["US"]["revenue-share"]["terms"]["share_percent"] == 100
    early = service.snapshot("demo", as_of="2025-02-13")
    assert early["state"]["US"]["revenue-share"]["terms"]["share_percent"] == 50
    assert "UA" not in early["state"]
    key = VerifierKey.from_string(service.list_keys()[0].verifier_key)
    verify_snapshot_signature(late, key)
    assert late["merkle_root"] and late["tree_size"] == len(events)


SIGNING = {
    "type": "position.stated",
    "party": "US",
    "topic": "signing",
    "occurred_at": "2025-02-12",
    "data": {"stance": "demand", "summary": "sign now"},
    "source": {"name": "AP", "kind": "media"},
}
RETRACT_1 = {
    "type": "record.retracted",
    "occurred_at": "2025-02-13",
    "data": {"target_seq": 1, "reason": "wrong"},
}


def retract(target: int) -> dict[str, Any]:
    return {"type": "record.retracted", "data": {"target_seq": target, "reason": "x"}}


def correct(target: int, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "record.corrected",
        "data": {"target_seq": target, "reason": "x", "changes": changes},
    }


@pytest.mark.parametrize(
    ("fix", "field", "why"),
    [
        (retract(99), "data.target_seq", "earlier"),
        (retract(4), "data.target_seq", "earlier"),  # itself: it would be seq 4
        (retract(3), "data.target_seq", "cannot themselves"),
        (retract(1), "data.target_seq", "already retracted"),
        (correct(1, {"topic": "revenue-share"}), "data.target_seq", "already retracted"),
        (correct(2, {"data": {"stance": "maybe", "summary": "?"}}), "data.changes", "invalid"),
        (correct(2, {"party": "usa"}), "data.changes.party", ""),
        (correct(2, {"seq": 5}), "data.changes.seq", ""),
    ],
    ids=[
        "missing target",
        "not earlier",
        "a fix",
        "retracted",
        "correcting a retracted record",
        "corrected data breaks the schema",
        "bad party",
        "member not correctable",
    ],
)
def test_invalid_fixes_are_refused_and_change_nothing(
    service: LedgerService, fix: dict[str, Any], field: str, why: str
) -> None:
    # seq 1 and 2: positions; seq 3 retracts seq 1.
    append_all(service, "fixes", [SIGNING, SIGNING, RETRACT_1], [])
    before = service.get_ledger("fixes")
    with pytest.raises(InvalidEvent) as caught:
        body = json.dumps({**fix, "occurred_at": "2025-02-14"}).encode()
        service.append("fixes", body, actor="t")
    assert caught.value.field == field
    assert why in str(caught.value)
    assert service.get_ledger("fixes") == before


def test_a_batch_may_fix_a_record_it_holds_itself(service: LedgerService) -> None:
    append_all(service, "batch", [SIGNING, SIGNING, retract_at(2), correct_at(1)], [])
    records = records_of(service, "batch")
    assert service.snapshot("batch")["state"] == fold(records).state_dict()
    assert service.snapshot("batch", known_at="2")["state"]["US"]["signing"]["seq"] == 2


def retract_at(target: int) -> dict[str, Any]:
    return {**retract(target), "occurred_at": "2025-02-14"}


def correct_at(target: int) -> dict[str, Any]:
    return {**correct(target, {"occurred_at": "2025-02-20T00:00:00Z"}), "occurred_at": "2025-02-21"}


def projection_rows(service: LedgerService) -> dict[str, list[tuple[Any, ...]]]:
    import sqlalchemy as sa

    tables = {
        "position_versions": "ledger_id, target_seq, known_from",
        "position_cells": "ledger_id, party, topic, claimant",
        "position_marks": "ledger_id, known_from",
        "record_fixes": "ledger_id, fix_seq",
    }
    with service.recorder.db.read() as conn:
        return {
            table: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {o}"))]
            for table, o in tables.items()
        }


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=ledgers().map(with_sources), cuts=st.lists(st.integers(1, 30), max_size=3))
def test_a_rebuild_reproduces_the_incremental_tables(
    service: LedgerService, events: list[dict[str, Any]], cuts: list[int]
) -> None:
    from ledger.store.positions import rebuild

    ledger = next(_names)
    append_all(service, ledger, events, cuts)
    incremental = projection_rows(service)
    assert rebuild(service.recorder.db, ledger) == len(events)
    assert projection_rows(service) == incremental


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=ledgers().map(with_sources),
    cuts=st.lists(st.integers(1, 30), min_size=4, max_size=16),
    wave=st.integers(1, 4),
)
def test_waves_committed_from_the_event_loop_project_what_a_rebuild_derives(
    service: LedgerService, events: list[dict[str, Any]], cuts: list[int], wave: int
) -> None:
    """As the server commits: concurrent requests share a group, which on
    PostgreSQL is mostly written as one statement (ledger.store.postgres.writer)."""
    from ledger.store.positions import rebuild

    ledger = next(_names)
    service.create_ledger(ledger)
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
    assert service.snapshot(ledger)["state"] == fold(records_of(service, ledger)).state_dict()
    incremental = projection_rows(service)
    assert rebuild(service.recorder.db, ledger) == len(events)
    assert projection_rows(service) == incremental


def test_history_marks_retracted_statements_and_skips_them_in_the_chain(
    service: LedgerService,
) -> None:
    stated = [
        {**SIGNING, "occurred_at": f"2025-02-{day}", "data": {"stance": s, "summary": s}}
        for day, s in (("10", "demand"), ("11", "offer"), ("12", "reject"))
    ]
    retract_offer = {**retract(2), "occurred_at": "2025-02-13"}
    append_all(service, "hist", [*stated, retract_offer], [])
    items = service.history("hist", party="US", topic="signing")["items"]
    assert [(i["seq"], i["from"], i["to"], i["retracted"]) for i in items] == [
        (1, None, "demand", False),
        (2, "demand", "offer", True),
        (3, "demand", "reject", False),
    ]
    assert items[1]["fixes"][0]["kind"] == "retracted" and items[1]["fixes"][0]["seq"] == 4
    before = service.history("hist", party="US", topic="signing", known_at="3")["items"]
    assert [(i["from"], i["retracted"]) for i in before] == [
        (None, False),
        ("demand", False),
        ("offer", False),
    ]


def test_snapshots_far_behind_the_head_agree_with_the_fold_across_mark_blocks(
    service: LedgerService,
) -> None:
    """Valid time moves forward with seq over three 1024-seq mark blocks, in
    single appends and batches; a correction moves an early statement's
    occurred_at past everything else. Snapshots at known_at in every block,
    with and without as_of, equal the fold, and a rebuild reproduces the marks."""
    from ledger.store.positions import MARK_BLOCK, rebuild

    def stated(n: int) -> dict[str, Any]:
        day = 1 + n * 27 // (3 * MARK_BLOCK)
        return {
            **SIGNING,
            "party": ["US", "UA"][n % 2],
            "topic": ["signing", "revenue-share"][n // 2 % 2],
            "occurred_at": f"2025-03-{day:02d}",
            "data": {"stance": ["demand", "offer", "reject"][n % 3], "summary": f"s{n}"},
        }

    events = [stated(n) for n in range(3 * MARK_BLOCK)]
    events[1500] = {
        **correct(3, {"occurred_at": "2025-04-01T00:00:00Z"}),
        "occurred_at": "2025-03-15",
    }
    service.create_ledger("marks")
    for start in range(0, 40):  # single appends first, then batches
        service.append("marks", json.dumps(events[start]).encode(), actor="t")
    for start in range(40, len(events), 500):
        service.append("marks", json.dumps(events[start : start + 500]).encode(), actor="t")
    records = records_of(service, "marks")
    for known_at in (2, 40, 1023, 1024, 1025, 1499, 1500, 1501, 2100, len(records)):
        for as_of in (None, "2025-03-05", "2025-03-31"):
            document = service.snapshot("marks", as_of=as_of, known_at=str(known_at))
            bound = None if as_of is None else f"{as_of}T23:59:59Z"
            expected = fold(records, as_of=bound, known_at=known_at)
            assert document["state"] == expected.state_dict(), (known_at, as_of)
    incremental = projection_rows(service)
    assert len(incremental["position_marks"]) == 3
    rebuild(service.recorder.db, "marks")
    assert projection_rows(service) == incremental


def test_an_append_writes_the_cells_it_touches_and_reads_none(
    service: LedgerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No group reads the ledger's cells: an append's cost must not grow with
    the number of cells its ledger has."""
    import sqlalchemy as sa

    from ledger.store import positions as projection

    ledger = next(_names)
    service.create_ledger(ledger)
    stated = [
        {"type": "position.stated", "party": party, "topic": topic, "occurred_at": "2025-02-24"}
        | {"data": {"stance": "demand", "summary": "s"}, "source": {"name": "AP", "kind": "media"}}
        for party, topic in [("US", "fund"), ("UA", "fund"), ("US", "security")]
    ]
    service.append(ledger, json.dumps(stated[:2]).encode(), actor="t")
    statements: list[str] = []
    execute = projection.raw_execute

    def recording(conn: Any, sql: str, params: Any = ()) -> Any:
        statements.append(sql)
        return execute(conn, sql, params)

    monkeypatch.setattr(projection, "raw_execute", recording)
    # One cell already known, one new, one twice: each is written once, none read.
    again = [stated[0], stated[2], stated[2]]
    service.append(ledger, json.dumps(again).encode(), actor="t")
    assert statements and not any("FROM position_cells" in sql for sql in statements)
    with service.recorder.db.read() as conn:
        cells = conn.execute(
            sa.text(
                "SELECT party, topic, claimant FROM position_cells c JOIN ledgers l"
                " ON l.id = c.ledger_id WHERE l.name = :name ORDER BY party, topic"
            ),
            {"name": ledger},
        ).all()
    assert [tuple(c) for c in cells] == [
        ("UA", "fund", ""),
        ("US", "fund", ""),
        ("US", "security", ""),
    ]
