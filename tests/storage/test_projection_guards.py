"""The positions projection tables refuse direct edits (migration 0010), on every backend.

Only what the append path does passes: closing a version once, raising a
mark. ``ledger projections rebuild`` alone may rewrite the rows.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ledger.service import LedgerService
from ledger.store.positions import rebuild
from tests.storage.test_positions_projection import (
    SIGNING,
    append_all,
    correct_at,
    projection_rows,
    retract_at,
)

LEDGER = "guarded"

EDITS = {
    "position_versions": "UPDATE position_versions SET party = 'RU' WHERE target_seq = 1",
    "position_cells": "UPDATE position_cells SET topic = 'forged'",
    "position_marks": "UPDATE position_marks SET occurred_at = '2000-01-01T00:00:00Z'",
    "record_fixes": "UPDATE record_fixes SET kind = 'corrected'",
}


@pytest.fixture
def fixed(service: LedgerService) -> LedgerService:
    # seq 1, 2: positions; 3 retracts 2; 4 corrects 1 (closes and reopens it).
    append_all(service, LEDGER, [SIGNING, SIGNING, retract_at(2), correct_at(1)], [])
    return service


def run(service: LedgerService, sql: str) -> None:
    with service.recorder.db.engine.begin() as conn:
        conn.execute(sa.text(sql))


@pytest.mark.parametrize("table", sorted(EDITS))
def test_a_direct_update_is_refused(fixed: LedgerService, table: str) -> None:
    before = projection_rows(fixed)
    with pytest.raises(sa.exc.DBAPIError, match=f"UPDATE on {table} is forbidden"):
        run(fixed, EDITS[table])
    assert projection_rows(fixed) == before


@pytest.mark.parametrize("table", sorted(EDITS))
def test_a_direct_delete_is_refused(fixed: LedgerService, table: str) -> None:
    before = projection_rows(fixed)
    with pytest.raises(sa.exc.DBAPIError, match=f"DELETE on {table} is forbidden"):
        run(fixed, f"DELETE FROM {table}")
    assert projection_rows(fixed) == before


def test_reopening_or_moving_a_closed_version_is_refused(fixed: LedgerService) -> None:
    with pytest.raises(sa.exc.DBAPIError, match="forbidden"):
        run(fixed, "UPDATE position_versions SET known_to = NULL WHERE target_seq = 2")
    with pytest.raises(sa.exc.DBAPIError, match="forbidden"):
        run(fixed, "UPDATE position_versions SET known_to = 9 WHERE target_seq = 2")
    # Closing an open version while changing it is refused too.
    with pytest.raises(sa.exc.DBAPIError, match="forbidden"):
        run(
            fixed,
            "UPDATE position_versions SET known_to = 9, occurred_at = '2000-01-01T00:00:00Z'"
            " WHERE target_seq = 1 AND known_to IS NULL",
        )


def test_appends_with_fixes_and_many_mark_blocks_still_pass(service: LedgerService) -> None:
    # Versions closed by fixes, and marks raised across blocks of 1024 seqs.
    events = [SIGNING] * 1030 + [retract_at(5), correct_at(1), correct_at(1030)]
    append_all(service, LEDGER, events, [700, 1031])
    late = {**SIGNING, "occurred_at": "2025-03-01"}
    service.append(LEDGER, json.dumps([late, correct_at(1034)]).encode(), actor="t")
    assert service.get_ledger(LEDGER).size == 1035


def test_the_rebuild_alone_may_rewrite_the_rows(fixed: LedgerService) -> None:
    before = projection_rows(fixed)
    assert rebuild(fixed.recorder.db, LEDGER) == 4
    assert projection_rows(fixed) == before
    with fixed.recorder.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM projection_rebuilds")).scalar() == 0
    # The guard is back once the rebuild has committed.
    with pytest.raises(sa.exc.DBAPIError, match="DELETE on position_cells is forbidden"):
        run(fixed, "DELETE FROM position_cells")


def test_the_rebuild_lifts_the_guard_only_for_its_own_ledger(fixed: LedgerService) -> None:
    append_all(fixed, "other", [SIGNING], [])
    with fixed.recorder.db.engine.connect() as conn:
        ids = dict(
            (str(n), int(i)) for n, i in conn.execute(sa.text("SELECT name, id FROM ledgers"))
        )
    with (
        pytest.raises(sa.exc.DBAPIError, match="DELETE on position_cells is forbidden"),
        fixed.recorder.db.engine.begin() as conn,
    ):
        conn.execute(
            sa.text("INSERT INTO projection_rebuilds (ledger_id) VALUES (:l)"), {"l": ids["other"]}
        )
        conn.execute(sa.text("DELETE FROM position_cells WHERE ledger_id = :l"), {"l": ids[LEDGER]})


def test_postgresql_refuses_to_commit_a_lifted_guard(fixed: LedgerService) -> None:
    if fixed.recorder.db.url.get_backend_name() == "sqlite":
        pytest.skip("SQLite has no deferred triggers: there the rebuild alone removes its row")
    with pytest.raises(sa.exc.DBAPIError, match="must remove its projection_rebuilds row"):
        run(fixed, "INSERT INTO projection_rebuilds (ledger_id) SELECT id FROM ledgers")
    with fixed.recorder.db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM projection_rebuilds")).scalar() == 0


@pytest.mark.parametrize("table", sorted(EDITS))
def test_postgresql_refuses_truncate(fixed: LedgerService, table: str) -> None:
    if fixed.recorder.db.url.get_backend_name() == "sqlite":
        pytest.skip("SQLite has no TRUNCATE")
    with pytest.raises(sa.exc.DBAPIError, match=f"TRUNCATE on {table} is forbidden"):
        run(fixed, f"TRUNCATE {table}")
