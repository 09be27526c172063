"""The server-side audit (``ledger.audit``) on every backend: clean and edited stores."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger.audit import audit_ledger
from ledger.core.hashing import record_hash
from ledger.runtime import Runtime
from ledger.store.tree import node_key
from tests.storage import sample_events

LEDGER = "audited"
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
    report = audit_ledger(filled, LEDGER, on_records=seen.append)
    assert report.valid, report
    assert (report.from_seq, report.to_seq, report.count) == (1, SIZE, SIZE)
    assert report.head_hash == filled.service.get_ledger(LEDGER).head_hash
    assert seen and seen[-1] == SIZE
    # The service is accepted as well as the runtime.
    assert audit_ledger(filled.service, LEDGER).valid


def test_an_empty_ledger_audits_valid(runtime: Runtime) -> None:
    runtime.service.create_ledger(LEDGER)
    report = audit_ledger(runtime, LEDGER)
    assert report.valid and report.count == 0


@pytest.mark.parametrize("seq", [1, 13, SIZE])
def test_an_edited_record_is_named(filled: Runtime, seq: int) -> None:
    edit_record(filled, seq)
    report = audit_ledger(filled, LEDGER)
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
    report = audit_ledger(filled, LEDGER)
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
    report = audit_ledger(filled, LEDGER)
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
    report = audit_ledger(filled, LEDGER)
    assert not report.valid and report.failure_seq == 12 and "checkpoint" in str(report.reason)
