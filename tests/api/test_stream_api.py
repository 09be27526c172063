"""Server-sent events: the backlog, new appends, resumption, validation."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from tests.api.conftest import assert_problem
from tests.conftest import position


def _events(body: str) -> list[dict[str, str]]:
    """Parse an event stream into its events (comments and retry lines dropped)."""
    events = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event", "data"):
                fields[name] = value
        if fields:
            events.append(fields)
    return events


def test_the_stream_sends_the_backlog_and_new_records(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "talks"}).raise_for_status()
    client.post("/v1/ledgers/talks/events", json=[position(), position(stance="demand")])
    service = client.app.state.service  # type: ignore[attr-defined]

    def append_later() -> None:
        # Appended while the stream is open: it must arrive without a new request.
        service.append(
            "talks",
            b'{"type":"position.stated","party":"UA","topic":"x",'
            b'"occurred_at":"2025-02-25","data":{"stance":"offer","summary":"s"},'
            b'"source":{"name":"n","kind":"media"}}',
            actor="t",
        )

    timer = threading.Timer(0.4, append_later)
    timer.start()
    try:
        response = client.get("/v1/ledgers/talks/events/stream?after_seq=1&timeout=1.5")
    finally:
        timer.join()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.text.startswith("retry: ")
    events = _events(response.text)
    assert [e["id"] for e in events] == ["2", "3"]
    assert all(e["event"] == "record" for e in events)
    for event in events:
        record = client.get(f"/v1/ledgers/talks/events/{event['id']}").text
        assert event["data"] == record  # the exact canonical bytes


def test_a_stream_past_the_head_waits_for_records_past_it(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "talks"}).raise_for_status()
    client.post("/v1/ledgers/talks/events", json=[position(), position()])
    response = client.get("/v1/ledgers/talks/events/stream?after_seq=5&timeout=0.1")
    assert response.status_code == 200 and _events(response.text) == []


def test_last_event_id_resumes_after_it(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "talks"}).raise_for_status()
    client.post("/v1/ledgers/talks/events", json=[position(), position(), position()])
    response = client.get(
        "/v1/ledgers/talks/events/stream?timeout=0.1", headers={"Last-Event-ID": "2"}
    )
    assert [e["id"] for e in _events(response.text)] == ["3"]
    bad = client.get("/v1/ledgers/talks/events/stream?timeout=0.1", headers={"Last-Event-ID": "x"})
    assert_problem(bad, 422, "Last-Event-ID")


def test_the_stream_validates_its_parameters(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "talks"}).raise_for_status()
    assert_problem(client.get("/v1/ledgers/talks/events/stream?after_seq=-1"), 422, "after_seq")
    assert_problem(client.get("/v1/ledgers/talks/events/stream?after_seq=x"), 422, "after_seq")
    assert_problem(client.get("/v1/ledgers/talks/events/stream?timeout=0"), 422, "timeout")
    assert_problem(client.get("/v1/ledgers/nope/events/stream"), 404)


def test_private_streams_need_a_reader(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "secret", "public_read": False}).raise_for_status()
    del client.headers["Authorization"]
    assert_problem(client.get("/v1/ledgers/secret/events/stream?timeout=0.1"), 401)
