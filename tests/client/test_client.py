"""``ledger_client.Client`` against a real server, on SQLite and PostgreSQL:
appends and their receipts, batches, pages, positions, exports, the live
stream, problems, and retries that never write twice."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledger_client import Client, ProblemError, RetryPolicy, TransportError
from ledger_client.verify import main as verify_main
from tests.client.proxy import DROP, Reply, proxy
from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


def stances(count: int) -> list[dict[str, object]]:
    kinds = ["oppose", "demand", "offer", "reject", "support"]
    return [position(stance=kinds[n % len(kinds)]) for n in range(count)]


def head(server: ServerProcess, ledger: str) -> int:
    return int(httpx.get(f"{server.url}/v1/ledgers/{ledger}/head").json()["size"])


def test_an_append_returns_the_receipt_of_its_record(server: ServerProcess, ledger: str) -> None:
    with Client(server.url) as client:
        receipt = client.append(ledger, position())
        record = client.record(ledger, receipt.seq)
    assert (receipt.seq, receipt.leaf_index, receipt.replayed) == (1, 0, False)
    assert receipt.verified_in is None
    assert record.id == receipt.id and record.hash() == receipt.hash
    assert record.data["stance"] == "oppose"


def test_an_event_keeps_the_id_it_was_given(server: ServerProcess, ledger: str) -> None:
    event = position(id="0193f0c2-5a1e-7c4d-8b2a-3e4f5a6b7c8d")
    with Client(server.url) as client:
        assert client.append(ledger, event).id == "0193f0c2-5a1e-7c4d-8b2a-3e4f5a6b7c8d"


def test_a_verified_append_is_proven_in_the_signed_log_and_remembered(
    server: ServerProcess, ledger: str, log_key: str, state_file: Path
) -> None:
    with Client(server.url, trusted_keys=[log_key], state=state_file) as client:
        first = client.append(ledger, position(), verify=True)
        second = client.append(ledger, position(stance="demand"), verify=True)
    assert first.verified_in is not None and first.verified_in >= 1
    assert second.verified_in is not None and second.verified_in >= 2
    remembered = json.loads(state_file.read_text())["checkpoints"][ledger]
    assert remembered.split("\n")[1] == str(second.verified_in)


def test_append_many_splits_into_batches_in_order(
    server: ServerProcess, ledger: str, log_key: str
) -> None:
    events = stances(11)
    with Client(server.url, trusted_keys=[log_key], batch_size=4) as client:
        receipts = client.append_many(ledger, events, verify=True)
        records = list(client.records(ledger))
    assert [r.seq for r in receipts] == list(range(1, 12))
    assert all(r.verified_in is not None and r.verified_in >= r.seq for r in receipts)
    assert [r.data["stance"] for r in records] == [e["data"]["stance"] for e in events]  # type: ignore[index]


def test_a_refused_batch_writes_nothing_and_reports_what_was_committed(
    server: ServerProcess, ledger: str
) -> None:
    events = stances(6)
    events[4] = position(stance="shrug")
    with Client(server.url, batch_size=3) as client, pytest.raises(ProblemError) as refused:
        client.append_many(ledger, events)
    assert refused.value.status == 422
    assert refused.value.field == "[1].data.stance"
    assert [r.seq for r in refused.value.committed] == [1, 2, 3]
    assert head(server, ledger) == 3


def test_records_pages_through_the_log_and_verifies_each(
    server: ServerProcess, ledger: str, log_key: str
) -> None:
    with Client(server.url, trusted_keys=[log_key]) as client:
        client.append_many(ledger, stances(25))
        every = list(client.records(ledger, verify=True, page_size=10))
        tail = list(client.records(ledger, after_seq=20, page_size=10))
        one = client.record(ledger, 13, verify=True)
    assert [r.seq for r in every] == list(range(1, 26))
    assert [r.seq for r in tail] == [21, 22, 23, 24, 25]
    assert one == every[12]


def test_a_problem_names_its_status_type_and_field(server: ServerProcess, ledger: str) -> None:
    with Client(server.url) as client:
        with pytest.raises(ProblemError) as invalid:
            client.append(ledger, position(stance="shrug"))
        with pytest.raises(ProblemError) as unknown:
            client.append("no-such-ledger", position())
    assert (invalid.value.status, invalid.value.slug, invalid.value.field) == (
        422,
        "invalid-event",
        "data.stance",
    )
    assert invalid.value.detail
    assert (unknown.value.status, unknown.value.slug) == (404, "not-found")


def test_positions_are_read_as_the_server_folds_them(server: ServerProcess, ledger: str) -> None:
    with Client(server.url) as client:
        client.append(ledger, position(stance="oppose", occurred_at="2025-02-24"))
        client.append(ledger, position(stance="demand", occurred_at="2025-03-01"))
        then = client.snapshot(ledger, as_of="2025-02-25")
        known_first = client.snapshot(ledger, known_at=1)
        history = client.history(ledger, party="US")
        diff = client.diff(ledger, "2025-02-25", "2025-03-02")
    assert then["state"]["US"]["security-guarantees"]["stance"] == "oppose"
    assert known_first["state"]["US"]["security-guarantees"]["stance"] == "oppose"
    assert [item["to"] for item in history["items"]] == ["oppose", "demand"]
    assert diff["changes"]["US"]["security-guarantees"]["after"]["stance"] == "demand"


def test_an_export_is_written_whole_and_verifies(
    server: ServerProcess, ledger: str, log_key: str, tmp_path: Path
) -> None:
    with Client(server.url) as client:
        client.append_many(ledger, stances(7))
        path = client.export(ledger, tmp_path / "bundle.tar")
        with pytest.raises(ProblemError):
            client.export("no-such-ledger", tmp_path / "missing.tar")
    assert verify_main(["bundle", str(path), "--key", log_key, "--ledger", ledger]) == 0
    assert not (tmp_path / "missing.tar").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.tar"]


def test_an_answer_lost_after_the_commit_is_retried_without_writing_twice(
    server: ServerProcess, ledger: str
) -> None:
    with proxy(server.url) as network:
        lost: list[str] = []

        def lose_first_append(method: str, path: str, response: httpx.Response) -> object:
            if method == "POST" and not lost:
                lost.append(path)
                return DROP
            return None

        network.alter = lose_first_append  # type: ignore[assignment]
        with Client(network.url) as client:
            receipts = client.append_many(ledger, stances(3))
    posts = [headers for method, _, headers in network.requests if method == "POST"]
    assert len(posts) == 2 and posts[0]["Idempotency-Key"] == posts[1]["Idempotency-Key"]
    assert all(r.replayed for r in receipts)
    assert head(server, ledger) == 3


def test_429_is_retried_after_the_time_the_server_names(server: ServerProcess, ledger: str) -> None:
    with proxy(server.url) as network:
        refused: list[float] = []

        def busy_once(method: str, path: str, response: httpx.Response) -> object:
            if method == "POST" and not refused:
                refused.append(time.monotonic())
                return Reply(
                    429,
                    b'{"type":"/problems/rate-limited","title":"Too many","status":429}',
                    {"Retry-After": "1", "Content-Type": "application/problem+json"},
                )
            return None

        network.alter = busy_once  # type: ignore[assignment]
        with Client(network.url) as client:
            receipt = client.append(ledger, position())
            waited = time.monotonic() - refused[0]
    # The refused attempt reached the server and committed; the retry replays it.
    assert receipt.replayed and waited >= 1.0
    assert head(server, ledger) == 1


def test_an_integrity_alarm_is_not_retried(server: ServerProcess, ledger: str) -> None:
    alarm = (
        b'{"type":"/problems/integrity-alarm","title":"Integrity alarm","status":503,"detail":"x"}'
    )
    with proxy(server.url) as network:
        network.alter = lambda method, path, response: Reply(  # type: ignore[assignment]
            503, alarm, {"Content-Type": "application/problem+json"}
        )
        with Client(network.url) as client, pytest.raises(ProblemError) as raised:
            client.append(ledger, position())
    assert raised.value.status == 503 and raised.value.slug == "integrity-alarm"
    assert len(network.requests) == 1


def test_a_server_that_never_answers_is_a_transport_error_after_the_policy() -> None:
    policy = RetryPolicy(attempts=3, timeout=5, wait_initial=0.01, wait_max=0.05)
    with Client("http://127.0.0.1:9", retry=policy) as client, pytest.raises(TransportError):
        client.record("any", 1)


def test_follow_streams_new_records_and_resumes_across_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    running = ServerProcess(database_url=database_url, data_dir=tmp_path)
    httpx.post(f"{running.url}/v1/ledgers", json={"name": "live"}).raise_for_status()
    received: list[int] = []
    done = threading.Event()

    def follow() -> None:
        policy = RetryPolicy(attempts=50, wait_initial=0.05, wait_max=0.2)
        with Client(running.url, retry=policy) as client:
            for record in client.follow("live"):
                received.append(record.seq)
                if len(received) == 6:
                    done.set()
                    return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        with Client(running.url) as client:
            client.append_many("live", stances(3))
        deadline = time.monotonic() + 10
        while len(received) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        running.kill()  # the stream drops mid-flight, as when a server dies
        running = ServerProcess(database_url=database_url, data_dir=tmp_path, port=running.port)
        with Client(running.url) as client:
            client.append_many("live", stances(3))
        assert done.wait(20), received
    finally:
        running.stop()
    assert received == [1, 2, 3, 4, 5, 6]
