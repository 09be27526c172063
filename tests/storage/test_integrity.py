"""The server-side audit (``ledger.integrity``) on every backend: clean and edited stores."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core.hashing import record_hash
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.store.tree import node_key
from tests.core.test_positions import DEMO, ledgers
from tests.storage import sample_events
from tests.storage.test_positions_projection import append_all, with_sources

LEDGER = "audited"
_generated = itertools.count()
SIZE = 30


@pytest.fixture
def filled(runtime: Runtime) -> Runtime:
    # Uneven appends: checkpoints at 1, 5, 12 and 30.
    lines = sample_events.fill(runtime.service, LEDGER, [1, 4, 7, 18], summary="statement {n}")
    assert len(lines) == SIZE
    return runtime


def execute(runtime: Runtime, table: str, sql: str, **params: object) -> None:
    """What an attacker with database access does: drop the guard, then edit."""
    engine = runtime.database.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
        else:
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
        conn.execute(sa.text(sql), params)


def edit_record(runtime: Runtime, seq: int) -> None:
    with runtime.database.engine.connect() as conn:
        canonical = bytes(
            conn.execute(
                sa.text("SELECT canonical FROM records WHERE seq = :seq"), {"seq": seq}
            ).scalar_one()
        )
    edited = canonical.replace(b'"stance":"offer"', b'"stance":"reject"')
    assert edited != canonical
    execute(
        runtime, "records", "UPDATE records SET canonical = :c WHERE seq = :seq", c=edited, seq=seq
    )


def test_a_clean_ledger_audits_valid(filled: Runtime) -> None:
    seen: list[int] = []
    report = check_ledger(filled, LEDGER, on_records=seen.append)
    assert report.valid, report
    assert (report.from_seq, report.to_seq, report.count) == (1, SIZE, SIZE)
    assert report.head_hash == filled.service.get_ledger(LEDGER).head_hash
    assert seen and seen[-1] == SIZE
    # The service is accepted as well as the runtime.
    assert check_ledger(filled.service, LEDGER).valid


def test_an_empty_ledger_audits_valid(runtime: Runtime) -> None:
    runtime.service.create_ledger(LEDGER)
    report = check_ledger(runtime, LEDGER)
    assert report.valid and report.count == 0


@pytest.mark.parametrize("seq", [1, 13, SIZE])
def test_an_edited_record_is_named(filled: Runtime, seq: int) -> None:
    edit_record(filled, seq)
    report = check_ledger(filled, LEDGER)
    assert not report.valid
    assert report.failure_seq == seq, report


def test_an_edited_record_with_its_hash_column_is_named(filled: Runtime) -> None:
    edit_record(filled, 9)
    with filled.database.engine.connect() as conn:
        canonical = bytes(
            conn.execute(sa.text("SELECT canonical FROM records WHERE seq = 9")).scalar_one()
        )
    execute(
        filled,
        "records",
        "UPDATE records SET record_hash = :h WHERE seq = 9",
        h=record_hash(canonical),
    )
    report = check_ledger(filled, LEDGER)
    assert not report.valid and report.failure_seq == 9, report


def test_an_edited_tree_node_is_found(filled: Runtime) -> None:
    # Level 4, index 0: the node over seq 1-16 (the lowest level stored).
    execute(
        filled,
        "tree_nodes",
        "UPDATE tree_nodes SET hash = :h WHERE node_key = :k",
        h=bytes(32),
        k=node_key((4, 0)),
    )
    report = check_ledger(filled, LEDGER)
    assert not report.valid and report.failure_seq == 1 and "tree node" in str(report.reason)


def test_an_edited_checkpoint_is_found(filled: Runtime) -> None:
    with filled.database.engine.connect() as conn:
        note = conn.execute(
            sa.text("SELECT note FROM checkpoints WHERE tree_size = 12")
        ).scalar_one()
    forged = note.replace("\n12\n", "\n11\n")
    execute(
        filled,
        "checkpoints",
        "UPDATE checkpoints SET note = :n WHERE tree_size = 12",
        n=forged,
    )
    report = check_ledger(filled, LEDGER)
    assert not report.valid and report.failure_seq == 12 and "checkpoint" in str(report.reason)


# -- the positions projection ------------------------------------------------

POSITIONS = "positions"
CLAIM = {
    "type": "position.stated",
    "party": "UA",
    "topic": "signing",
    "occurred_at": "2025-02-26",
    "data": {"stance": "oppose", "summary": "US says Kyiv stalls", "claimed_by": "US"},
    "source": {"name": "AP", "kind": "media"},
}
RETRACT_11 = {
    "type": "record.retracted",
    "occurred_at": "2025-02-27",
    "data": {"target_seq": 11, "reason": "misattributed"},
}
# Spaces after the colons: ":16" would read as a bind parameter.
# A correction whose stored cell holds a 1.
CORRECT_10 = {
    "type": "record.corrected",
    "occurred_at": "2025-02-28",
    "data": {
        "target_seq": 10,
        "reason": "the first draft's share",
        "changes": {"data": {"stance": "demand", "summary": "1%", "terms": {"share_percent": 1}}},
    },
}
FORGED_CELL = (
    '{"seq": 17, "since": "2025-02-22T00:00:00Z", "stance": "support", "summary": "forged"}'
)


@pytest.fixture
def projected(runtime: Runtime) -> Runtime:
    """The demo (seq 23 corrects 17), a claim (24), a retraction of 11 (25), and a
    correction of 10 (26)."""
    events = [json.loads(line) for line in DEMO.read_text().splitlines()]
    append_all(runtime.service, POSITIONS, [*events, CLAIM, RETRACT_11, CORRECT_10], [10, 23])
    return runtime


def tamper(runtime: Runtime, sql: str) -> None:
    """An attacker with database access: lift the projection tables' guards, then edit."""
    engine = runtime.database.engine
    with engine.begin() as conn:
        for table in ("position_versions", "position_cells", "position_marks", "record_fixes"):
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
            else:
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}"))
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table}"))
        conn.execute(sa.text(sql))


_VERSION = "INSERT INTO position_versions (ledger_id, target_seq, known_from, known_to, party,"
TAMPERING = {
    # The forged cell a signed snapshot would otherwise carry.
    "a first version given a forged cell": (
        f"UPDATE position_versions SET cell = '{FORGED_CELL}' WHERE target_seq = 10",
        ["party US", "topic revenue-share", "seq 10", "cell"],
    ),
    # Equal in Python (True == 1), not in the JSON the snapshot would sign.
    "a corrected version's 1 turned into true": (
        # "\\:" keeps SQLAlchemy from reading ":1" as a bind parameter.
        "UPDATE position_versions SET cell = replace(cell, '\"share_percent\"\\:1',"
        " '\"share_percent\"\\:true') WHERE target_seq = 10 AND known_from = 26",
        ["party US", "topic revenue-share", "seq 10", "known from 26", "cell"],
    ),
    "a version moved to another topic": (
        "UPDATE position_versions SET topic = 'signing' WHERE target_seq = 14",
        ["party US", "topic resources-in-scope", "seq 14", "topic"],
    ),
    "a claim's claimant changed": (
        "UPDATE position_versions SET claimant = 'UA' WHERE target_seq = 24",
        ["party UA", "topic signing", "claim by US", "claimant"],
    ),
    "a version's valid time changed": (
        "UPDATE position_versions SET occurred_at = '2025-03-30T00:00:00Z' WHERE target_seq = 22",
        ["party US", "topic security-guarantees", "occurred_at"],
    ),
    "a corrected version's cell edited": (
        "UPDATE position_versions SET cell = replace(cell, 'demand', 'support')"
        " WHERE target_seq = 17 AND known_from = 23",
        ["party US", "topic revenue-share", "seq 17", "known from 23", "cell"],
    ),
    "a retraction undone": (
        "UPDATE position_versions SET known_to = NULL WHERE target_seq = 11",
        ["party UA", "topic signing", "seq 11", "known_to"],
    ),
    "a correction undone": (
        "DELETE FROM position_versions WHERE target_seq = 17 AND known_from = 23",
        ["party US", "topic revenue-share", "seq 17", "known from 23", "missing"],
    ),
    "a statement deleted": (
        "DELETE FROM position_versions WHERE target_seq = 20",
        ["party UA", "topic signing", "seq 20", "missing"],
    ),
    "a statement inserted": (
        _VERSION + " topic, claimant, occurred_at, cell) SELECT ledger_id, 15, 15, NULL, 'US',"
        f" 'signing', '', '2025-02-28T00:00:00Z', '{FORGED_CELL}' FROM position_versions LIMIT 1",
        ["party US", "topic signing", "seq 15", "not made by the records"],
    ),
    "a cell deleted": (
        "DELETE FROM position_cells WHERE party = 'UA' AND topic = 'investment-link'",
        ["position_cells", "party UA", "topic investment-link", "missing"],
    ),
    "a cell inserted": (
        "INSERT INTO position_cells (ledger_id, party, topic, claimant)"
        " SELECT ledger_id, 'US', 'investment-link', '' FROM position_cells LIMIT 1",
        ["position_cells", "party US", "topic investment-link", "not made by the records"],
    ),
    "a mark lowered": (
        "UPDATE position_marks SET occurred_at = '2025-02-01T00:00:00Z'",
        ["position_marks", "block 1", "occurred_at"],
    ),
    "a mark deleted": (
        "DELETE FROM position_marks",
        ["position_marks", "block 1", "missing"],
    ),
    "a mark inserted": (
        "INSERT INTO position_marks (ledger_id, known_from, occurred_at)"
        " SELECT ledger_id, 1025, occurred_at FROM position_marks",
        ["position_marks", "block 1025", "not made by the records"],
    ),
    "a fix inserted": (
        "INSERT INTO record_fixes (ledger_id, fix_seq, target_seq, kind)"
        " SELECT ledger_id, 24, 22, 'retracted' FROM record_fixes WHERE fix_seq = 25",
        ["record_fixes", "seq 24", "of seq 22", "not made by the records"],
    ),
    "a fix deleted": (
        "DELETE FROM record_fixes WHERE fix_seq = 25",
        ["record_fixes", "seq 25", "party UA", "topic signing", "missing"],
    ),
    "a fix's kind changed": (
        "UPDATE record_fixes SET kind = 'retracted' WHERE fix_seq = 23",
        ["record_fixes", "seq 23", "party US", "topic revenue-share", "kind"],
    ),
}


def test_a_clean_projection_audits_valid(projected: Runtime) -> None:
    report = check_ledger(projected, POSITIONS)
    assert report.valid, report
    assert report.count == 26


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_an_edited_projection_row_is_named(projected: Runtime, case: str) -> None:
    sql, names = TAMPERING[case]
    tamper(projected, sql)
    report = check_ledger(projected, POSITIONS)
    assert not report.valid, report
    reason = str(report.reason)
    assert f"ledger {POSITIONS}" in reason, reason
    for name in names:
        assert name in reason, reason


def test_the_edited_cell_was_what_the_snapshot_signed(projected: Runtime) -> None:
    # Why the audit must look: the server signs whatever the tables say.
    tamper(projected, f"UPDATE position_versions SET cell = '{FORGED_CELL}' WHERE target_seq = 17")
    tamper(projected, "DELETE FROM position_versions WHERE target_seq = 17 AND known_from = 23")
    tamper(projected, "UPDATE position_versions SET known_to = NULL WHERE target_seq = 17")
    snapshot = projected.service.snapshot(POSITIONS)
    assert snapshot["state"]["US"]["revenue-share"]["summary"] == "forged"
    assert not check_ledger(projected, POSITIONS).valid


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=ledgers().map(with_sources), cuts=st.lists(st.integers(1, 30), max_size=3))
def test_every_projection_the_appends_write_audits_valid(
    runtime: Runtime, events: list[dict[str, Any]], cuts: list[int]
) -> None:
    ledger = f"generated-{next(_generated)}"
    append_all(runtime.service, ledger, events, cuts)
    report = check_ledger(runtime, ledger)
    assert report.valid, report
