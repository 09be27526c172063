"""PostgreSQL: append groups written as one statement store what their
transaction would, and go the usual way whenever the head, the keys or a
constraint says the group was sealed on a stale assumption."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.core import checkpoint as notes
from ledger.core.errors import DuplicateEventId, HeadMismatch, StorageUnavailable
from ledger.core.records import EventDraft
from ledger.integrity import check_ledger
from ledger.runtime import Runtime
from ledger.store.database import Database
from ledger.store.postgres import PostgresBackend
from ledger.store.recorder import AppendRequest, AppendResult, Recorder
from tests.conftest import POSTGRES_URL, _create_pg_schema, _drop_pg_schema, settings_for

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="one-statement groups are PostgreSQL's")

LEDGER = "talks"
MOMENT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def postgres(database: Database) -> PostgresBackend:
    backend = database.backend
    assert isinstance(backend, PostgresBackend)
    return backend


class StatementSpy:
    """Counts the one-statement writes of a database and what each reported."""

    def __init__(self, database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.moved: list[int | None] = []
        backend = database.backend
        assert isinstance(backend, PostgresBackend)
        real = backend.autocommit_row

        async def watched(sql: str, params: Any) -> tuple[Any, ...] | None:
            try:
                row = await real(sql, params)
            except Exception:
                self.moved.append(None)
                raise
            self.moved.append(None if row is None else int(row[0]))
            return row

        monkeypatch.setattr(backend, "autocommit_row", watched)


def runtime_on(url: str, data_dir: Path) -> Runtime:
    running = Runtime.start(settings_for(url, data_dir))
    # One moment for every group: two databases fed the same groups hold the same bytes.
    running.service.recorder.clock = lambda: MOMENT
    return running


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    schema, url = _create_pg_schema()
    running = runtime_on(url, tmp_path)
    try:
        yield running
    finally:
        running.close()
        _drop_pg_schema(schema)


@pytest.fixture
def recorder(runtime: Runtime) -> Recorder:
    runtime.service.recorder.create_ledger(LEDGER)
    return runtime.service.recorder


def draft(n: int, *, kind: str = "position.stated", **extra: Any) -> EventDraft:
    fields: dict[str, Any] = {
        "party": ("US", "UA", "EU")[n % 3],
        "topic": ("revenue-share", "security-guarantees")[n % 2],
    }
    if kind == "position.stated":
        data: dict[str, Any] = {"stance": "demand", "summary": f"statement {n}"}
        if n % 4 == 0:
            data["claimed_by"] = "UA"
    elif kind == "position.withdrawn":
        data = {"summary": f"withdrawn {n}"}
    else:
        data, fields = {"text": f"note {n}"}, {}
    return EventDraft.of(
        type=kind,
        # Later statements may report earlier moments: marks must keep the maximum.
        occurred_at=f"2025-02-{1 + (n * 7) % 28:02d}T00:00:00Z",
        data=data,
        source={"name": "Reuters", "kind": "media"},
        **{"id": str(uuid.uuid4()), **fields, **extra},
    )


def request(*drafts: EventDraft, key: str | None = None, **options: Any) -> AppendRequest:
    return AppendRequest.build(
        LEDGER,
        drafts,
        actor="analyst",
        idempotency_key=key,
        request_sha256="0" * 64 if key else None,
        **options,
    )


def commit_wave(recorder: Recorder, wave: Sequence[AppendRequest]) -> list[object]:
    """Submit ``wave`` at once from an event loop: one group."""

    async def together() -> list[object]:
        return await asyncio.gather(
            *(recorder.commit_async(r) for r in wave), return_exceptions=True
        )

    return asyncio.run(together())


def ledger_rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "ledgers": "name, head_seq, head_hash, last_recorded_at",
        "records": "*",
        "position_versions": "*",
        "position_cells": "*",
        "position_marks": "*",
        "record_fixes": "*",
        "tree_nodes": "*",
        "checkpoints": "*",
    }
    with database.read() as conn:
        return {
            table: [tuple(r) for r in conn.execute(sa.text(f"SELECT {cols} FROM {table}"))]
            for table, cols in tables.items()
        }


def sorted_rows(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(found, key=repr) for table, found in rows.items()}


def waves() -> list[list[AppendRequest]]:
    """Groups of every kind: single events, batches, groups over the size cap, a
    block of marks crossed, an Idempotency-Key, expected_seq, events outside the
    projection, and a fix."""
    n = iter(range(10_000))
    single = [request(draft(next(n))) for _ in range(6)]
    mixed = [
        request(draft(next(n), kind="position.withdrawn")),
        request(draft(next(n), kind="note.added")),
        request(*(draft(next(n)) for _ in range(40))),
        request(draft(next(n)), expected_seq=49),
    ]
    # Over the size cap (the usual way, by COPY), up to seq 1010; then a group
    # crossing the mark block that starts at 1025.
    large = [request(*(draft(next(n)) for _ in range(size))) for size in (500, 460)]
    crossing = [request(*(draft(next(n)) for _ in range(10))) for _ in range(3)]
    keyed = [request(draft(next(n)), key="k-1"), request(draft(next(n)))]
    fix = [
        request(
            EventDraft.of(
                id=str(uuid.uuid4()),
                type="record.retracted",
                occurred_at="2025-02-27T00:00:00Z",
                data={"target_seq": 3, "reason": "misreported"},
                source={"name": "Reuters", "kind": "media"},
            )
        )
    ]
    after = [request(draft(next(n))) for _ in range(3)]
    return [[request(draft(next(n)))], single, mixed, large, crossing, keyed, fix, after]


def test_groups_written_as_one_statement_store_what_their_transactions_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas = [_create_pg_schema(), _create_pg_schema()]
    fast, usual = (runtime_on(url, tmp_path) for _, url in schemas)
    try:
        spy = StatementSpy(fast.database, monkeypatch)
        for running in (fast, usual):
            running.service.recorder.create_ledger(LEDGER)
        for wave in waves():
            by_statement = commit_wave(fast.service.recorder, wave)
            by_transaction = usual.service.recorder._commit_group(wave)
            assert [type(o) for o in by_statement] == [type(o) for o in by_transaction]
            assert [o.receipts_json() for o in by_statement if isinstance(o, AppendResult)] == [
                o.receipts_json() for o in by_transaction if isinstance(o, AppendResult)
            ]
        # The first group found no known head, the large one went by COPY, and
        # the key and the fix need the database.
        assert spy.moved == [1, 1, 1, 1]
        assert sorted_rows(ledger_rows(fast.database)) == sorted_rows(ledger_rows(usual.database))
        assert check_ledger(fast.service, LEDGER).valid
    finally:
        for running in (fast, usual):
            running.close()
        for schema, _ in schemas:
            _drop_pg_schema(schema)


def test_a_head_moved_by_another_process_sends_the_group_the_usual_way(
    runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = StatementSpy(recorder.db, monkeypatch)
    commit_wave(recorder, [request(draft(1))])  # the usual way: no head known yet
    commit_wave(recorder, [request(draft(2)), request(draft(3))])
    other = Recorder(
        database=recorder.db,
        origin=recorder.origin,
        signers=recorder.signers,
        projections=recorder.projections,
        clock=recorder.clock,
    )
    other.append(LEDGER, [draft(4)], actor="elsewhere")
    outcomes = commit_wave(recorder, [request(draft(5)), request(draft(6))])
    assert [r.seq for o in outcomes if isinstance(o, AppendResult) for r in o.receipts] == [5, 6]
    assert spy.moved == [1, 0]  # the second statement found seq 4 and wrote nothing
    commit_wave(recorder, [request(draft(7))])
    assert spy.moved == [1, 0, 1]  # the usual way left a head known again
    assert runtime.service.get_ledger(LEDGER).size == 7
    assert check_ledger(runtime.service, LEDGER).valid


def test_a_rotated_key_sends_the_group_the_usual_way_and_signs_with_both(
    runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = StatementSpy(recorder.db, monkeypatch)
    commit_wave(recorder, [request(draft(1))])
    commit_wave(recorder, [request(draft(2))])
    # Another process's rotation: the key is registered, not yet seen by this recorder.
    new = runtime.keyring.generate()
    runtime.registry.register(
        new.verifier, origin=runtime.identity.origin, now="2025-03-01T12:00:00.000000Z"
    )
    commit_wave(recorder, [request(draft(3))])
    assert spy.moved == [1, 0]
    with recorder.db.read() as conn:
        note = conn.execute(
            sa.text("SELECT note FROM checkpoints WHERE tree_size = 3")
        ).scalar_one()
    signed = notes.SignedCheckpoint.from_text(note)
    assert new.verifier.key_id in {s.key_id for s in signed.signatures}
    assert len(signed.signatures) == 2
    commit_wave(recorder, [request(draft(4))])
    assert spy.moved == [1, 0, 1]
    assert check_ledger(runtime.service, LEDGER).valid


def test_an_id_already_used_fails_its_own_request_and_no_other(
    runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = StatementSpy(recorder.db, monkeypatch)
    first = draft(1)
    commit_wave(recorder, [request(first)])
    outcomes = commit_wave(
        recorder, [request(draft(2)), request(draft(3, id=first.id)), request(draft(4))]
    )
    assert spy.moved == [None]  # the constraint refused the statement
    assert [type(o) for o in outcomes] == [AppendResult, DuplicateEventId, AppendResult]
    outcomes = commit_wave(recorder, [request(draft(5), expected_seq=2)])
    assert isinstance(outcomes[0], HeadMismatch)  # refused on the known head: the usual way
    assert spy.moved == [None]
    commit_wave(recorder, [request(draft(6))])
    assert spy.moved == [None, 1]
    assert runtime.service.get_ledger(LEDGER).size == 4
    assert check_ledger(runtime.service, LEDGER).valid


def test_a_connection_its_server_ended_is_replaced_before_the_next_group(
    runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = StatementSpy(recorder.db, monkeypatch)

    async def scenario() -> None:
        await recorder.commit_async(request(draft(1)))
        await recorder.commit_async(request(draft(2)))
        pid = await _backend_pid(recorder.db)
        with recorder.db.write() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)  # the server's goodbye reaches the socket
        await recorder.commit_async(request(draft(3)))

    asyncio.run(scenario())
    assert spy.moved == [1, 1]
    assert runtime.service.get_ledger(LEDGER).size == 3
    assert check_ledger(runtime.service, LEDGER).valid


async def _backend_pid(database: Database) -> int:
    # The class's method: the spy on the instance counts only the groups.
    row = await PostgresBackend.autocommit_row(postgres(database), "SELECT pg_backend_pid()", {})
    assert row is not None
    return int(row[0])


def test_a_connection_lost_mid_statement_fails_its_group_as_unknown_and_the_next_one_goes_on(
    runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = StatementSpy(recorder.db, monkeypatch)

    async def scenario() -> list[object]:
        await recorder.commit_async(request(draft(1)))
        # Another transaction holds the head row, so the statement waits on it.
        blocker = recorder.db.engine.connect()
        blocker.execute(sa.text("SELECT 1 FROM ledgers WHERE name = :n FOR UPDATE"), {"n": LEDGER})
        try:
            pending = asyncio.ensure_future(
                asyncio.gather(
                    recorder.commit_async(request(draft(2))),
                    recorder.commit_async(request(draft(3))),
                    return_exceptions=True,
                )
            )
            await _until_waiting(recorder.db)
            with recorder.db.write() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE query LIKE 'WITH moved AS%' AND pid <> pg_backend_pid()"
                    )
                )
            # Bounded: were the group retried the usual way, it would wait on the blocker.
            lost = await asyncio.wait_for(pending, 10)
        finally:
            blocker.rollback()
            blocker.close()
        later = await recorder.commit_async(request(draft(4)))
        return [*lost, later]

    first, second, later = asyncio.run(scenario())
    for outcome in (first, second):
        assert isinstance(outcome, StorageUnavailable)
        assert "may or may not" in str(outcome) and "look for the event" in str(outcome)
    assert spy.moved == [None]  # no head known for draft 4: the usual way
    assert isinstance(later, AppendResult)
    assert [r.seq for r in later.receipts] == [2]
    assert check_ledger(runtime.service, LEDGER).valid


def test_an_idle_connection_is_asked_before_it_is_trusted_and_kept_if_it_answers(
    runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.store.postgres import connections

    monkeypatch.setattr(connections, "HOT_IDLE_SECONDS", 0.0)
    spy = StatementSpy(recorder.db, monkeypatch)

    async def scenario() -> list[int]:
        pids = []
        for n in range(1, 5):
            await recorder.commit_async(request(draft(n)))
            pids.append(await _backend_pid(recorder.db))
        return pids

    pids = asyncio.run(scenario())
    assert spy.moved == [1, 1, 1]
    assert len(set(pids)) == 1  # asked each time, answered, kept
    assert check_ledger(runtime.service, LEDGER).valid


async def _until_waiting(database: Database) -> None:
    """Until a one-statement write waits on a lock."""
    for _ in range(200):
        row = await PostgresBackend.autocommit_row(
            postgres(database),
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE 'WITH moved AS%%' AND wait_event_type = 'Lock'",
            {},
        )
        if row is not None and row[0]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the statement never waited on the head row")
