"""The recorder's contract, run on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from ledger.core.chain import verify_chain
from ledger.core.errors import (
    DuplicateEventId,
    HeadMismatch,
    IdempotencyKeyReused,
    IntegrityAlarm,
    LedgerExists,
    NotFound,
)
from ledger.core.hashing import GENESIS_PREV, record_hash
from ledger.core.records import EventDraft
from ledger.service import LedgerService
from ledger.store import recorder as recorder_module
from ledger.store.database import Database
from ledger.store.recorder import AppendRequest, AppendResult, Recorder
from tests.conftest import ORIGIN

LEDGER = "us-ua-minerals-2025"


def draft(n: int = 0, *, event_id: str | None = None) -> EventDraft:
    return EventDraft.of(
        id=event_id or str(uuid.uuid4()),
        type="position.stated",
        occurred_at="2025-02-24T00:00:00Z",
        party="US",
        topic="security-guarantees",
        data={"stance": "oppose", "summary": f"statement {n}"},
        source={"name": "CNN", "kind": "media"},
    )


@pytest.fixture
def recorder(service: LedgerService) -> Recorder:
    rec = service.recorder
    rec.create_ledger(LEDGER)
    return rec


def all_lines(recorder: Recorder, ledger: str = LEDGER) -> list[bytes]:
    return list(recorder.iter_records(ledger, page=7))


def test_a_new_ledger_is_empty_with_the_genesis_head(recorder: Recorder) -> None:
    info = recorder.get_ledger(LEDGER)
    assert (info.size, info.head_hash) == (0, GENESIS_PREV)


def test_creating_a_ledger_twice_conflicts(recorder: Recorder) -> None:
    with pytest.raises(LedgerExists):
        recorder.create_ledger(LEDGER)


def test_unknown_ledgers_are_not_found(recorder: Recorder) -> None:
    with pytest.raises(NotFound):
        recorder.append("nope", [draft()], actor="t")
    with pytest.raises(NotFound):
        recorder.read_page("nope", after_seq=0, limit=1)


def test_appends_are_numbered_gap_free_and_chained(recorder: Recorder) -> None:
    receipts = []
    for n in range(5):
        receipts.extend(recorder.append(LEDGER, [draft(n), draft(n)], actor="t").receipts)
    assert [r.seq for r in receipts] == list(range(1, 11))
    assert receipts[0].prev == GENESIS_PREV
    assert all(b.prev == a.hash for a, b in itertools.pairwise(receipts))
    lines = all_lines(recorder)
    assert [record_hash(line) for line in lines] == [r.hash for r in receipts]
    assert verify_chain(lines, ledger=LEDGER) == recorder.get_ledger(LEDGER).head_hash


def test_receipts_render_as_their_dicts_in_member_order(recorder: Recorder) -> None:
    result = recorder.append(LEDGER, [draft(1), draft(2), draft(3)], actor="t")
    dicts = [r.to_dict() for r in result.receipts]
    rendered = orjson.loads(result.receipts_json())
    assert rendered == dicts
    assert [list(item) for item in rendered] == [list(d) for d in dicts]
    assert orjson.loads(result.receipts_json(batch=False)) == dicts[0]
    assert {r.tree_size for r in result.receipts} == {3}
    assert [r.leaf_index for r in result.receipts] == [0, 1, 2]
    assert AppendResult.of(result.receipts) == result


def test_recorded_at_never_decreases_even_when_the_clock_steps_back(
    service: LedgerService,
) -> None:
    times = iter(
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in (10, 5, 20, 1, 30)
    )
    recorder = Recorder(
        database=service.recorder.db,
        origin=ORIGIN,
        signers=service.recorder.signers,
        clock=lambda: next(times),
    )
    recorder.create_ledger(LEDGER)  # consumes 10
    stamps = [
        recorder.append(LEDGER, [draft()], actor="t").receipts[0].recorded_at for _ in range(4)
    ]
    assert stamps == sorted(stamps)
    assert stamps[0] == "2026-01-01T00:00:05.000000Z"
    assert stamps[1] == "2026-01-01T00:00:20.000000Z"
    assert stamps[2] == stamps[1]  # clock said 00:01; the ledger holds at 00:20
    verify_chain(all_lines(recorder), ledger=LEDGER)


def test_a_batch_with_a_used_id_writes_nothing(recorder: Recorder) -> None:
    used = str(uuid.uuid4())
    recorder.append(LEDGER, [draft(event_id=used)], actor="t")
    before = recorder.get_ledger(LEDGER)
    with pytest.raises(DuplicateEventId) as caught:
        recorder.append(LEDGER, [draft(), draft(event_id=used), draft()], actor="t")
    assert caught.value.field == "[1].id"
    assert recorder.get_ledger(LEDGER) == before
    assert len(all_lines(recorder)) == 1


def test_an_id_twice_in_one_batch_conflicts(recorder: Recorder) -> None:
    twin = str(uuid.uuid4())
    with pytest.raises(DuplicateEventId):
        recorder.append(LEDGER, [draft(event_id=twin), draft(event_id=twin)], actor="t")
    assert recorder.get_ledger(LEDGER).size == 0


def test_ids_are_unique_per_ledger_not_globally(recorder: Recorder) -> None:
    shared = str(uuid.uuid4())
    recorder.create_ledger("other")
    recorder.append(LEDGER, [draft(event_id=shared)], actor="t")
    recorder.append("other", [draft(event_id=shared)], actor="t")
    assert recorder.get_ledger("other").size == 1


def test_expected_seq_guards_the_head(recorder: Recorder) -> None:
    recorder.append(LEDGER, [draft()], actor="t", expected_seq=0)
    with pytest.raises(HeadMismatch) as caught:
        recorder.append(LEDGER, [draft()], actor="t", expected_seq=0)
    assert (caught.value.expected_seq, caught.value.head_seq) == (0, 1)
    assert recorder.append(LEDGER, [draft()], actor="t", expected_seq=1).receipts[0].seq == 2


def test_an_idempotent_retry_returns_the_original_receipts(recorder: Recorder) -> None:
    events = [draft(), draft()]
    first = recorder.append(LEDGER, events, actor="t", idempotency_key="k1", request_sha256="aa")
    again = recorder.append(LEDGER, events, actor="t", idempotency_key="k1", request_sha256="aa")
    assert again.replayed and not first.replayed
    assert again.receipts == first.receipts
    assert recorder.get_ledger(LEDGER).size == 2
    with pytest.raises(IdempotencyKeyReused):
        recorder.append(LEDGER, [draft()], actor="t", idempotency_key="k1", request_sha256="bb")
    assert recorder.get_ledger(LEDGER).size == 2


def test_a_failed_append_leaves_its_idempotency_key_unused(recorder: Recorder) -> None:
    used = str(uuid.uuid4())
    recorder.append(LEDGER, [draft(event_id=used)], actor="t")
    with pytest.raises(DuplicateEventId):
        recorder.append(
            LEDGER, [draft(event_id=used)], actor="t", idempotency_key="k", request_sha256="x"
        )
    result = recorder.append(LEDGER, [draft()], actor="t", idempotency_key="k", request_sha256="x")
    assert not result.replayed and result.receipts[0].seq == 2


def test_pages_and_single_records_return_canonical_bytes(recorder: Recorder) -> None:
    receipts = recorder.append(LEDGER, [draft(n) for n in range(25)], actor="t").receipts
    page, head = recorder.read_page(LEDGER, after_seq=10, limit=5)
    assert head == 25
    assert [record_hash(line) for line in page] == [r.hash for r in receipts[10:15]]
    assert record_hash(recorder.get_record(LEDGER, 25)) == receipts[-1].hash
    with pytest.raises(NotFound):
        recorder.get_record(LEDGER, 26)
    assert len(list(recorder.iter_records(LEDGER, after_seq=20, page=2))) == 5


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE records SET type = 'x'",
        "UPDATE records SET canonical = canonical WHERE seq = 1",
        "DELETE FROM records",
        "DELETE FROM records WHERE seq = 2",
    ],
)
def test_stored_records_cannot_be_changed_through_sql(
    recorder: Recorder, database: Database, statement: str
) -> None:
    recorder.append(LEDGER, [draft(), draft()], actor="t")
    with pytest.raises(exc.DBAPIError, match="append-only"), database.engine.begin() as conn:
        conn.execute(sa.text(statement))
    verify_chain(all_lines(recorder), ledger=LEDGER)
    assert len(all_lines(recorder)) == 2


def test_truncate_is_refused_on_postgresql(recorder: Recorder, database: Database) -> None:
    if database.url.get_backend_name() == "sqlite":
        pytest.skip("SQLite has no TRUNCATE")
    recorder.append(LEDGER, [draft()], actor="t")
    with pytest.raises(exc.DBAPIError, match="append-only"), database.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE records CASCADE"))


@pytest.mark.parametrize(
    "change",
    [{"event_id": "00000000-0000-4000-8000-000000000000"}, {"seq": 2}],
    ids=["same-seq", "same-id"],
)
def test_the_database_refuses_a_duplicate_seq_or_id(
    recorder: Recorder, database: Database, change: dict[str, object]
) -> None:
    recorder.append(LEDGER, [draft()], actor="t")
    with database.engine.begin() as conn:
        row = dict(conn.execute(sa.text("SELECT * FROM records")).mappings().one())
    with pytest.raises(exc.IntegrityError), database.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO records (ledger_id, seq, event_id, type, party, topic, occurred_at,"
                " recorded_at, record_hash, canonical) VALUES (:ledger_id, :seq, :event_id,"
                " :type, :party, :topic, :occurred_at, :recorded_at, :record_hash, :canonical)"
            ),
            {**row, **change},
        )


def test_concurrent_appenders_never_fork_or_gap(recorder: Recorder) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(40):
                recorder.append(LEDGER, [draft(n)], actor="t")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lines = all_lines(recorder)
    assert len(lines) == 240
    verify_chain(lines, ledger=LEDGER)


def test_migrations_run_down_and_up_again(database: Database) -> None:
    """Every revision's downgrade undoes its upgrade, on both databases."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from ledger.store.database import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert database.current_revision() == head
    with database.write() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert database.current_revision() is None
    database.migrate()
    assert database.current_revision() == head


def test_a_group_connection_ended_by_the_server_is_replaced_unnoticed(
    recorder: Recorder, database: Database
) -> None:
    # Appends keep their PostgreSQL connection between groups; one the server
    # ended while it sat idle must not fail the next append.
    if database.url.get_backend_name() == "sqlite":
        pytest.skip("PostgreSQL's backends")
    recorder.append(LEDGER, [draft(1)], actor="t")
    admin = sa.create_engine(database.url)
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    assert killed >= 1
    time.sleep(0.2)  # the server's goodbye reaches the socket
    recorder.append(LEDGER, [draft(2)], actor="t")
    assert len(all_lines(recorder)) == 2


# -- a head it did not write: checked before it is chained on -------------------------


def other_recorder(recorder: Recorder) -> Recorder:
    """What another server process on the same database appends with."""
    return Recorder(
        database=recorder.db,
        origin=recorder.origin,
        signers=recorder.signers,
        projections=recorder.projections,
    )


def stored_count(database: Database) -> int:
    with database.read() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar_one())


def set_head(database: Database, **columns: object) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    with database.write() as conn:
        conn.execute(sa.text(f"UPDATE ledgers SET {assignments}"), columns)


def edit_last_record(database: Database) -> None:
    """What an attacker with database access does: lift the guard, rewrite record 4."""
    with database.write() as conn:
        if database.url.get_backend_name() == "sqlite":
            conn.execute(sa.text("DROP TRIGGER records_no_update"))
        else:
            conn.execute(sa.text("DROP TRIGGER records_append_only ON records"))
        canonical = conn.execute(
            sa.text("SELECT canonical FROM records WHERE seq = 4")
        ).scalar_one()
        edited = bytes(canonical).replace(b'"stance":"oppose"', b'"stance":"support"')
        assert edited != bytes(canonical)
        conn.execute(sa.text("UPDATE records SET canonical = :c WHERE seq = 4"), {"c": edited})


def four_records(recorder: Recorder) -> list[AppendResult]:
    return [recorder.append(LEDGER, [draft(n), draft(n)], actor="t") for n in range(2)]


def assert_alarm_refuses(
    recorder: Recorder, database: Database, caplog: pytest.LogCaptureFixture, seq: int
) -> None:
    """An append raises the alarm naming ``seq``, writes nothing, and logs it."""
    caplog.clear()
    with (
        caplog.at_level(logging.ERROR, logger="ledger.integrity"),
        pytest.raises(IntegrityAlarm) as raised,
    ):
        recorder.append(LEDGER, [draft(9)], actor="t")
    assert raised.value.seq == seq
    assert stored_count(database) == 4
    alarms = [r for r in caplog.records if r.name == "ledger.integrity"]
    assert alarms and f"seq {seq}" in alarms[0].getMessage()
    assert "integrity alarm" in alarms[0].getMessage()


def test_a_head_row_rolled_back_is_refused_not_appended_onto(
    recorder: Recorder, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = four_records(recorder)
    at_two = first.receipts[-1]
    set_head(database, head_seq=2, head_hash=at_two.hash, last_recorded_at=at_two.recorded_at)
    assert_alarm_refuses(recorder, database, caplog, seq=4)
    assert_alarm_refuses(other_recorder(recorder), database, caplog, seq=4)
    assert [a.seq for a in other_recorder(recorder).check_heads()] == [4]


def test_a_head_row_naming_a_wrong_hash_is_refused(
    recorder: Recorder, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    four_records(recorder)
    set_head(database, head_hash="f" * 64)
    assert_alarm_refuses(recorder, database, caplog, seq=4)
    assert_alarm_refuses(other_recorder(recorder), database, caplog, seq=4)


def test_an_edited_last_record_is_refused_by_a_recorder_that_did_not_write_it(
    recorder: Recorder, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    four_records(recorder)
    edit_last_record(database)
    fresh = other_recorder(recorder)
    assert [a.seq for a in fresh.check_heads()] == [4]
    assert_alarm_refuses(fresh, database, caplog, seq=4)


def test_a_restored_head_lets_appends_resume(recorder: Recorder, database: Database) -> None:
    results = four_records(recorder)
    last = results[-1].receipts[-1]
    set_head(database, head_hash="f" * 64)
    with pytest.raises(IntegrityAlarm):
        recorder.append(LEDGER, [draft(9)], actor="t")
    set_head(database, head_hash=last.hash)
    assert recorder.append(LEDGER, [draft(9)], actor="t").receipts[0].seq == 5
    assert recorder.check_heads() == []


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seq of every head the recorders check, in order."""
    seqs: list[int] = []
    real = recorder_module.head_fault

    def counted(conn: Any, ledger: str, head: Any) -> Any:
        seqs.append(head[1])
        return real(conn, ledger, head)

    monkeypatch.setattr(recorder_module, "head_fault", counted)
    return seqs


def test_another_processs_appends_are_checked_and_accepted(
    recorder: Recorder, checked: list[int]
) -> None:
    other = other_recorder(recorder)
    recorder.append(LEDGER, [draft(1)], actor="here")
    for n in range(5):  # on the head it wrote itself, a recorder checks nothing
        recorder.append(LEDGER, [draft(n)], actor="here")
    assert checked == [0]
    for n in range(3):  # each takes over a head the other moved
        other.append(LEDGER, [draft(n)], actor="elsewhere")
        recorder.append(LEDGER, [draft(n), draft(n)], actor="here")
    assert checked == [0, 6, 7, 9, 10, 12, 13]
    lines = all_lines(recorder)
    assert len(lines) == 15
    verify_chain(lines, ledger=LEDGER)


def test_groups_from_the_event_loop_do_not_check_the_head_they_left(
    recorder: Recorder, checked: list[int]
) -> None:
    n = itertools.count()

    def single() -> AppendRequest:
        return AppendRequest.build(LEDGER, [draft(next(n))], actor="t")

    # Single events (on PostgreSQL one statement, on SQLite sealed ahead while the
    # last group commits), a batch over the one-statement cap, an Idempotency-Key.
    waves = [[single() for _ in range(16)] for _ in range(10)]
    waves.append([AppendRequest.build(LEDGER, [draft(next(n)) for _ in range(100)], actor="t")])
    waves.append([AppendRequest.build(LEDGER, [draft(next(n))], actor="t", idempotency_key="k")])
    waves += [[single() for _ in range(16)] for _ in range(3)]

    async def commit_waves() -> None:
        for wave in waves:
            outcomes = await asyncio.gather(*(recorder.commit_async(r) for r in wave))
            assert all(isinstance(o, AppendResult) for o in outcomes)

    asyncio.run(commit_waves())
    assert checked == [0]  # the first group only: every later head was its own
    lines = all_lines(recorder)
    assert len(lines) == 16 * 13 + 101
    verify_chain(lines, ledger=LEDGER)
