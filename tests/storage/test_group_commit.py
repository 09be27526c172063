"""Group commit: concurrent appends share a transaction without sharing their fate."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.core import checkpoint as notes
from ledger.core.chain import verify_chain
from ledger.core.errors import DuplicateEventId, HeadMismatch, InvalidEvent
from ledger.core.records import EventDraft
from ledger.core.signing import VerifierKey
from ledger.integrity import check_ledger
from ledger.service import LedgerService
from ledger.store.groupcommit import GroupCommitter, Prepare
from ledger.store.recorder import AppendRequest, AppendResult, Recorder
from tests.conftest import ORIGIN

LEDGER = "talks"


# -- the committer ---------------------------------------------------------------


def at_once(commit: Callable[[Sequence[str]], list[object]]) -> Prepare[str]:
    """A prepare step whose outcomes need no further COMMIT."""

    def prepare(group: Sequence[str]) -> tuple[list[object], Callable[[], None]]:
        return commit(group), lambda: None

    return prepare


class Recording:
    """A commit function that records its groups; the first one waits to be released."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, group: Sequence[str]) -> list[object]:
        self.groups.append(list(group))
        if len(self.groups) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return [ValueError(item) if item.startswith("bad") else f"ok:{item}" for item in group]


def submit_all(
    committer: GroupCommitter[str, str], items: list[tuple[str, str]]
) -> dict[str, object]:
    outcomes: dict[str, object] = {}

    def run(key: str, item: str) -> None:
        try:
            outcomes[item] = committer.submit(key, item)
        except ValueError as e:
            outcomes[item] = e

    threads = [threading.Thread(target=run, args=pair) for pair in items]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # arrival order is queue order
    outcomes["_threads"] = threads
    return outcomes


def test_requests_arriving_during_a_commit_form_the_next_group_in_order() -> None:
    commit = Recording()
    committer: GroupCommitter[str, str] = GroupCommitter(at_once(commit))
    first = threading.Thread(target=committer.submit, args=("a", "first"))
    first.start()
    assert commit.entered.wait(10)
    waiting = submit_all(committer, [("a", f"r{n}") for n in range(5)])
    commit.release.set()
    for thread in [first, *waiting.pop("_threads")]:  # type: ignore[attr-defined]
        thread.join(10)
    assert commit.groups == [["first"], ["r0", "r1", "r2", "r3", "r4"]]
    assert waiting == {f"r{n}": f"ok:r{n}" for n in range(5)}


def test_a_refused_request_fails_alone_and_a_failed_commit_fails_all() -> None:
    commit = Recording()
    commit.release.set()
    committer: GroupCommitter[str, str] = GroupCommitter(at_once(commit))
    assert committer.submit("a", "good") == "ok:good"
    with pytest.raises(ValueError, match="bad-one"):
        committer.submit("a", "bad-one")

    def broken(group: Sequence[str]) -> list[object]:
        raise OSError("disk full")

    failing: GroupCommitter[str, str] = GroupCommitter(at_once(broken))
    with pytest.raises(OSError, match="disk full"):
        failing.submit("a", "anything")


def test_groups_hold_one_key_and_respect_the_weight_cap() -> None:
    commit = Recording()
    committer: GroupCommitter[str, str] = GroupCommitter(at_once(commit), max_weight=2)
    first = threading.Thread(target=committer.submit, args=("a", "first"))
    first.start()
    assert commit.entered.wait(10)
    waiting = submit_all(committer, [("a", "a1"), ("b", "b1"), ("a", "a2"), ("a", "a3")])
    commit.release.set()
    for thread in [first, *waiting.pop("_threads")]:  # type: ignore[attr-defined]
        thread.join(10)
    assert commit.groups == [["first"], ["a1", "a2"], ["b1"], ["a3"]]


def run_wave(committer: GroupCommitter[str, str], items: list[str]) -> list[object]:
    """Submit ``items`` from coroutines that all start in one event-loop turn."""

    async def one(item: str) -> object:
        try:
            return await committer.submit_async("a", item)
        except Exception as e:
            return e

    async def wave() -> list[object]:
        return list(await asyncio.gather(*(one(item) for item in items)))

    return asyncio.run(wave())


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "writer-thread"])
def test_a_wave_of_coroutines_commits_as_one_group_each_with_its_own_outcome(
    inline: bool,
) -> None:
    threads: list[str] = []

    def commit(group: Sequence[str]) -> list[object]:
        threads.append(threading.current_thread().name)
        return [ValueError(i) if i.startswith("bad") else f"ok:{i}" for i in group]

    committer: GroupCommitter[str, str] = GroupCommitter(at_once(commit), inline=inline)
    outcomes = run_wave(committer, ["r0", "bad1", "r2"])
    assert outcomes[0] == "ok:r0" and outcomes[2] == "ok:r2"
    assert isinstance(outcomes[1], ValueError)
    # Inline, the wave is one group committed on the loop's own thread.
    if inline:
        assert threads == ["MainThread"]
    else:
        assert set(threads) == {"ledger-writer"}
    committer.close()


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "writer-thread"])
def test_a_failed_transaction_fails_every_coroutine_in_it(inline: bool) -> None:
    def broken(group: Sequence[str]) -> list[object]:
        raise OSError("disk full")

    committer: GroupCommitter[str, str] = GroupCommitter(at_once(broken), inline=inline)
    outcomes = run_wave(committer, ["r0", "r1"])
    assert all(isinstance(o, OSError) for o in outcomes)
    committer.close()


def test_the_writer_thread_stops_on_close_and_starts_again_when_needed() -> None:
    writers: list[threading.Thread] = []

    def commit(group: Sequence[str]) -> list[object]:
        writers.append(threading.current_thread())
        return [f"ok:{i}" for i in group]

    committer: GroupCommitter[str, str] = GroupCommitter(at_once(commit))
    assert committer.submit("a", "one") == "ok:one"
    committer.close()
    writers[0].join(10)
    assert not writers[0].is_alive()
    assert committer.submit("a", "two") == "ok:two"
    assert writers[1] is not writers[0] and writers[1].is_alive()
    committer.close()


def test_a_cancelled_waiter_does_not_stop_the_others_hearing_of_their_commit() -> None:
    release = threading.Event()

    def commit(group: Sequence[str]) -> list[object]:
        assert release.wait(10)
        return [f"ok:{i}" for i in group]

    committer: GroupCommitter[str, str] = GroupCommitter(at_once(commit))

    async def scenario() -> tuple[bool, object]:
        gone = asyncio.create_task(committer.submit_async("a", "gone"))
        kept = asyncio.create_task(committer.submit_async("a", "kept"))
        await asyncio.sleep(0.05)
        gone.cancel()
        release.set()
        return (await asyncio.gather(gone, return_exceptions=True))[0] is not None, await kept

    _, kept = asyncio.run(scenario())
    assert kept == "ok:kept"
    committer.close()


def test_inline_groups_are_prepared_on_the_loop_and_committed_off_it() -> None:
    threads: list[tuple[str, str]] = []

    def prepare(group: Sequence[str]) -> tuple[list[object], Callable[[], None]]:
        def commit() -> None:
            threads.append(("commit", threading.current_thread().name))

        threads.append(("prepare", threading.current_thread().name))
        return [f"ok:{i}" for i in group], commit

    committer: GroupCommitter[str, str] = GroupCommitter(prepare, inline=True)
    assert run_wave(committer, ["r0", "r1"]) == ["ok:r0", "ok:r1"]
    assert threads[0] == ("prepare", "MainThread")
    assert threads[1][0] == "commit" and threads[1][1].startswith("ledger-writer-commit")
    committer.close()


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "writer-thread"])
def test_a_failed_commit_acknowledges_nobody_and_the_next_group_goes_on(inline: bool) -> None:
    groups: list[list[str]] = []

    def prepare(group: Sequence[str]) -> tuple[list[object], Callable[[], None]]:
        groups.append(list(group))
        failing = len(groups) == 1

        def commit() -> None:
            if failing:
                raise OSError("fsync failed")

        return [f"ok:{i}" for i in group], commit

    committer: GroupCommitter[str, str] = GroupCommitter(prepare, inline=inline)
    items = ["r0", "r1", "r2"]
    outcomes = dict(zip(items, run_wave(committer, items), strict=True))
    # The writer thread may take r0 alone before the others queue: whatever
    # the first group held failed, every later group committed.
    assert all(isinstance(outcomes[i], OSError) for i in groups[0])
    assert all(outcomes[i] == f"ok:{i}" for group in groups[1:] for i in group)
    assert run_wave(committer, ["r3"]) == ["ok:r3"]
    committer.close()


# -- the recorder's group transaction ------------------------------------------------


def draft(summary: str = "x", *, kind: str = "position.stated", **data: object) -> EventDraft:
    fields: dict[str, object] = {"party": "US", "topic": "signing"}
    if kind == "position.stated":
        payload: dict[str, object] = {"stance": "oppose", "summary": summary}
    else:
        payload = dict(data)
        fields = {}
    return EventDraft.of(
        id=str(uuid.uuid4()),
        type=kind,
        occurred_at="2025-02-24T00:00:00Z",
        data=payload,
        source={"name": "AP", "kind": "media"} if kind == "position.stated" else None,
        **fields,  # type: ignore[arg-type]
    )


def request(
    *drafts: EventDraft, expected_seq: int | None = None, key: str | None = None
) -> AppendRequest:
    return AppendRequest(
        ledger=LEDGER,
        drafts=drafts,
        actor="t",
        idempotency_key=key,
        request_sha256="0" * 64 if key else None,
        expected_seq=expected_seq,
    )


def test_one_group_transaction_refuses_requests_one_by_one(service: LedgerService) -> None:
    recorder = service.recorder
    recorder.create_ledger(LEDGER)
    recorder.append(LEDGER, [draft("seq 1")], actor="t")
    reused = draft("reused id")._replace(id=recorder_id(service, 1))
    group = [
        request(draft("seq 2"), draft("seq 3"), key="k1"),
        request(draft("stale"), expected_seq=1),  # the head is at 3 by now
        request(draft("seq 4"), expected_seq=3),
        request(reused),
        request(draft(kind="record.retracted", target_seq=99, reason="no such record")),
        request(draft(kind="record.retracted", target_seq=2, reason="fix of seq 2")),  # seq 5
        request(draft("seq 6")),
    ]
    outcomes = recorder._commit_group(group)
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == [
        "AppendResult",
        "HeadMismatch",
        "AppendResult",
        "DuplicateEventId",
        "InvalidEvent",
        "AppendResult",
        "AppendResult",
    ]
    assert isinstance(outcomes[1], HeadMismatch) and isinstance(outcomes[3], DuplicateEventId)
    assert isinstance(outcomes[4], InvalidEvent)
    results = [o for o in outcomes if isinstance(o, AppendResult)]
    seqs = [r.seq for result in results for r in result.receipts]
    assert seqs == [2, 3, 4, 5, 6]
    # Every receipt names the one checkpoint the group signed.
    assert {r.tree_size for result in results for r in result.receipts} == {6}
    lines = list(service.iter_records(LEDGER))
    assert len(lines) == 6
    head = verify_chain(lines, ledger=LEDGER)
    assert service.get_ledger(LEDGER).head_hash == head
    key = VerifierKey.from_string(service.list_keys()[0].verifier_key)
    note = notes.verify(service.checkpoint(LEDGER), [key])
    assert note.checkpoint.tree_size == 6 and note.checkpoint.head_hash == head
    # The retraction took effect; the refused fix left no trace.
    assert service.history(LEDGER, party="US", topic="signing")["items"][1]["retracted"]
    # The keyed request can be replayed, with its final receipts.
    replay = recorder._commit_group([request(draft("seq 2"), draft("seq 3"), key="k1")])
    assert replay == [AppendResult.of(results[0].receipts, replayed=True)]


def test_each_record_of_a_group_names_its_own_requests_actor_and_moment(
    service: LedgerService,
) -> None:
    recorder = service.recorder
    recorder.create_ledger(LEDGER)

    def by(actor: str, summary: str) -> AppendRequest:
        return AppendRequest(ledger=LEDGER, drafts=(draft(summary),), actor=actor)

    actors = ["kyiv-desk", "kyiv-desk", "dc-desk", "kyiv-desk", "dc-desk", "dc-desk"]
    recorder.clock = lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    outcomes = recorder._commit_group([by(actor, f"by {actor}") for actor in actors])
    assert all(isinstance(o, AppendResult) for o in outcomes)
    # The same actor again, a moment later: its record has the new moment.
    recorder.clock = lambda: datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)
    assert isinstance(recorder._commit_group([by("dc-desk", "later")])[0], AppendResult)
    lines = list(service.iter_records(LEDGER))
    verify_chain(lines, ledger=LEDGER)
    records = [json.loads(line) for line in lines]
    assert [r["actor"] for r in records] == [*actors, "dc-desk"]
    assert {r["recorded_at"] for r in records[:6]} == {"2026-03-01T12:00:00.000000Z"}
    assert records[6]["recorded_at"] == "2026-03-01T12:00:01.000000Z"


def recorder_id(service: LedgerService, seq: int) -> str:
    return str(json.loads(service.get_record(LEDGER, seq))["id"])


def test_concurrent_appends_are_grouped_and_each_is_acknowledged_after_its_commit(
    service: LedgerService,
) -> None:
    service.create_ledger(LEDGER)
    recorder = service.recorder

    def append(n: int) -> AppendResult:
        return recorder.append(LEDGER, [draft(f"n{n}")], actor="t")

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(append, range(400)))
    seqs = sorted(r.receipts[0].seq for r in results)
    assert seqs == list(range(1, 401))
    lines = list(service.iter_records(LEDGER))
    verify_chain(lines, ledger=LEDGER)
    with service.recorder.db.read() as conn:
        sizes = {int(s) for (s,) in conn.execute(sa.text("SELECT tree_size FROM checkpoints"))}
    # A receipt's tree size is a checkpoint that was signed and stored, and holds it.
    for result in results:
        receipt = result.receipts[0]
        assert receipt.tree_size in sizes and receipt.tree_size >= receipt.seq


# -- sealing ahead of the transaction (SQLite's inline groups) ---------------------


class AheadSpy:
    """Records whether each group's transaction used what was sealed ahead."""

    def __init__(self, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
        self.used: list[bool] = []
        holds = recorder._ahead_holds

        def spy(*args: Any) -> bool:
            result = holds(*args)
            self.used.append(result)
            return result

        monkeypatch.setattr(recorder, "_ahead_holds", spy)


def committing(recorder: Recorder, group: list[AppendRequest]) -> Callable[[], None]:
    """Prepare ``group`` as the drain does; the returned callable is its COMMIT."""
    outcomes, commit = recorder._prepare_group(group)
    assert all(isinstance(o, AppendResult) for o in outcomes)
    return commit


def sealed_during_a_commit(
    recorder: Recorder, committed: list[AppendRequest], waiting: list[AppendRequest]
) -> None:
    """Commit ``committed`` as the drain does, handing ``waiting`` to ``seal_ahead``
    while its COMMIT runs."""
    commit = committing(recorder, committed)
    for pending in waiting:
        recorder.seal_ahead(pending)
    commit()


@pytest.fixture
def sealing(service: LedgerService, monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, AheadSpy]:
    """The service's recorder on a new ledger, its sealing ahead watched."""
    recorder = service.recorder
    recorder.create_ledger(LEDGER)
    return recorder, AheadSpy(recorder, monkeypatch)


def other_recorder(service: LedgerService) -> Recorder:
    """A second writer on the same database (another server process)."""
    recorder = service.recorder
    return Recorder(
        database=recorder.db,
        origin=ORIGIN,
        signers=recorder.signers,
        projections=recorder.projections,
    )


def assert_ledger_sound(service: LedgerService, size: int) -> None:
    assert service.get_ledger(LEDGER).size == size
    assert check_ledger(service, LEDGER).valid


def test_requests_sealed_during_a_commit_get_what_their_transaction_would_give(
    service: LedgerService, sealing: tuple[Recorder, AheadSpy]
) -> None:
    recorder, spy = sealing
    keyed = request(draft("seq 2"), draft("seq 3"), key="k2")
    next_group = [
        keyed,
        request(draft("seq 4"), expected_seq=3),
        request(draft("stale"), expected_seq=1),
        request(keyed.drafts[0]._replace(id=str(uuid.uuid4()))),  # seq 5
        request(keyed.drafts[1]),  # its id is seq 3's
    ]
    sealed_during_a_commit(recorder, [request(draft("seq 1"))], next_group)
    later = request(draft("seq 6"))  # queued after the COMMIT: sealed in the transaction
    outcomes, commit = recorder._prepare_group([*next_group, later])
    commit()
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == [
        "AppendResult",
        "AppendResult",
        "HeadMismatch",
        "AppendResult",
        "DuplicateEventId",
        "AppendResult",
    ]
    seqs = [[r.seq for r in o.receipts] for o in outcomes if isinstance(o, AppendResult)]
    assert seqs == [[2, 3], [4], [5], [6]]
    assert {r.tree_size for o in outcomes if isinstance(o, AppendResult) for r in o.receipts} == {6}
    assert spy.used[-1:] == ([True] if recorder.db.backend.inline_groups else [])
    assert_ledger_sound(service, 6)
    # The keyed request's response was stored with the group.
    replay = recorder._commit_group([keyed])
    assert isinstance(outcomes[0], AppendResult)
    assert replay == [AppendResult.of(outcomes[0].receipts, replayed=True)]


def test_what_was_sealed_ahead_is_dropped_when_another_writer_moved_the_head(
    service: LedgerService, sealing: tuple[Recorder, AheadSpy]
) -> None:
    recorder, spy = sealing
    committing(recorder, [request(draft("seq 1"))])()
    waiting = [request(draft("a")), request(draft("b"), expected_seq=2)]
    sealed_during_a_commit(recorder, [request(draft("seq 2"))], waiting)
    other_recorder(service).append(LEDGER, [draft("seq 3, from elsewhere")], actor="o")
    outcomes = recorder._commit_group(waiting)
    assert spy.used[-1:] == ([False] if recorder.db.backend.inline_groups else [])
    assert isinstance(outcomes[0], AppendResult) and outcomes[0].receipts[0].seq == 4
    # Sealed ahead, it passed its check; on the real head it does not.
    assert isinstance(outcomes[1], HeadMismatch)
    assert_ledger_sound(service, 4)


def test_a_key_or_an_id_taken_meanwhile_is_seen_under_the_lock(
    service: LedgerService, sealing: tuple[Recorder, AheadSpy]
) -> None:
    recorder, spy = sealing
    chosen = draft("a client's own id")
    keyed = request(draft("keyed"), key="k")
    sealed_during_a_commit(recorder, [request(draft("seq 1"))], [request(chosen), keyed])
    # Another process stores the key, then the id (its head is ours: seq 1).
    other = other_recorder(service)
    stored = other.commit(keyed)
    other.append(LEDGER, [chosen], actor="o")
    outcomes = recorder._commit_group([request(chosen), keyed])
    assert spy.used[-1:] == ([False] if recorder.db.backend.inline_groups else [])
    assert isinstance(outcomes[0], DuplicateEventId)
    assert outcomes[1] == AppendResult.of(stored.receipts, replayed=True)
    assert_ledger_sound(service, 3)


def test_a_fix_ends_sealing_ahead_and_is_checked_in_the_transaction(
    service: LedgerService, sealing: tuple[Recorder, AheadSpy]
) -> None:
    recorder, spy = sealing
    group = [
        request(draft("seq 2")),
        request(draft(kind="record.retracted", target_seq=2, reason="wrong")),  # seq 3
        request(draft(kind="record.retracted", target_seq=2, reason="twice")),
        request(draft("seq 4")),
    ]
    sealed_during_a_commit(recorder, [request(draft("seq 1"))], group)
    if recorder.db.backend.inline_groups:
        assert recorder._shared.ahead[LEDGER].requests == group[:1]  # up to the fix
    outcomes = recorder._commit_group(group)
    assert [type(o).__name__ for o in outcomes] == [
        "AppendResult",
        "AppendResult",
        "InvalidEvent",
        "AppendResult",
    ]
    assert spy.used[-1:] == ([True] if recorder.db.backend.inline_groups else [])
    assert service.history(LEDGER, party="US", topic="signing")["items"][1]["retracted"]
    assert_ledger_sound(service, 4)


def test_the_inline_drain_hands_requests_queued_during_a_commit_to_ahead_in_order() -> None:
    seen: list[str] = []
    committed = threading.Event()
    release = threading.Event()

    def prepare(group: Sequence[str]) -> tuple[list[object], Callable[[], None]]:
        def commit() -> None:
            if group[0] == "first":
                committed.set()
                assert release.wait(10)

        return [f"ok:{item}" for item in group], commit

    committer: GroupCommitter[str, str] = GroupCommitter(prepare, inline=True, ahead=seen.append)

    async def scenario() -> list[str]:
        first = asyncio.ensure_future(committer.submit_async(LEDGER, "first"))
        while not committed.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(committer.submit_async(LEDGER, f"r{n}")) for n in range(3)]
        await asyncio.sleep(0.01)
        assert seen == ["r0", "r1", "r2"]  # while the first group's COMMIT runs
        release.set()
        return [await first, *[await r for r in rest]]

    assert asyncio.run(scenario()) == ["ok:first", "ok:r0", "ok:r1", "ok:r2"]
    assert seen == ["r0", "r1", "r2"]  # the next group's COMMIT had nothing waiting
    committer.close()


# -- statement mode (PostgreSQL's one-statement groups) ---------------------------


class Statements:
    """A statement step that writes groups holding no "slow" item and declines the rest."""

    def __init__(self) -> None:
        self.offered: list[list[str]] = []

    async def __call__(self, group: Sequence[str]) -> list[object] | None:
        self.offered.append(list(group))
        await asyncio.sleep(0)  # a real statement waits on the network
        if any(item.startswith("slow") for item in group):
            return None
        return [f"statement:{item}" for item in group]


def test_a_wave_goes_to_the_statement_as_one_group_and_a_declined_group_to_the_commit_thread() -> (
    None
):
    statements = Statements()
    threads: list[str] = []

    def commit(group: Sequence[str]) -> list[object]:
        threads.append(threading.current_thread().name)
        return [ValueError(item) if item.startswith("bad") else f"ok:{item}" for item in group]

    committer: GroupCommitter[str, str] = GroupCommitter(at_once(commit), statement=statements)
    try:
        assert run_wave(committer, ["a", "b", "c"]) == ["statement:a", "statement:b", "statement:c"]
        outcomes = run_wave(committer, ["slow", "bad", "d"])
        assert outcomes[0] == "ok:slow" and outcomes[2] == "ok:d"
        assert isinstance(outcomes[1], ValueError)  # fails alone
    finally:
        committer.close()
    assert statements.offered == [["a", "b", "c"], ["slow", "bad", "d"]]
    assert threads == ["ledger-writer-commit_0"]  # never the event loop's thread


def test_a_statement_that_raises_fails_its_whole_group_and_the_next_group_goes_on() -> None:
    async def statement(group: Sequence[str]) -> list[object] | None:
        if "boom" in group:
            raise OSError("connection lost")
        return [f"statement:{item}" for item in group]

    committer: GroupCommitter[str, str] = GroupCommitter(
        at_once(lambda group: list(group)), statement=statement
    )

    async def scenario() -> tuple[list[object], list[object]]:
        async def one(item: str) -> object:
            try:
                return await committer.submit_async("a", item)
            except Exception as e:
                return e

        first = await asyncio.gather(one("x"), one("boom"))
        return list(first), [await one("y")]

    first, later = asyncio.run(scenario())
    assert all(isinstance(o, OSError) for o in first)
    assert later == ["statement:y"]


def test_a_committer_drains_inline_or_by_statement_not_both() -> None:
    async def statement(group: Sequence[str]) -> list[object] | None:
        return None

    with pytest.raises(ValueError, match="not both"):
        GroupCommitter(at_once(lambda group: list(group)), inline=True, statement=statement)
