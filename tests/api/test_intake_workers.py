"""Large append bodies parsed in the intake worker process give what the
server's own parse gives, refusals included, and a lost worker loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from ledger.access import Scope
from ledger.api.app import create_app
from ledger.core.authors import sign_event
from ledger.intake import EventSchemas, Intake, ParsedBody
from ledger.intake_workers import POOL_BODY_BYTES, IntakePool
from tests.api.conftest import assert_problem
from tests.conftest import ADMIN_NAME, position, settings_for

EVENTS = "/v1/ledgers/talks/events"


def varied(n: int) -> dict[str, Any]:
    """Events that differ in every way the worker's encoding could lose."""
    event = position(
        party="UA" if n % 2 else "US",
        topic=f"topic-{n % 7}",
        occurred_at="2025-02-24T10:00:00+02:00" if n % 3 else "2025-02-24",
        stance="demand",
    )
    data = event["data"]
    assert isinstance(data, dict)
    # Astral and high-BMP characters: where orjson's member order and RFC 8785's differ.
    data["summary"] = f"statement {n}: \U0001f600 \ufb01 ü “quoted” \\ \n {'x' * (n % 40)}"
    if n % 5 == 0:
        event["source"] = {
            "name": "Reuters \U0001f4f0",
            "kind": "media",
            "url": "https://example.org/a",
            "reported_at": "2025-02-25",
        }
    if n % 11 == 0:  # no topic, no source
        event = {
            "type": "party.registered",
            "party": f"P{n}",
            "occurred_at": "2025-01-01",
            "data": {"name": f"Party {n} \u00e9"},
        }
    if n % 4 == 0:
        event["id"] = str(uuid.UUID(int=n + 1))
    return event


def body_of(events: list[dict[str, Any]]) -> bytes:
    # Odd and even sizes: non-ASCII characters both escaped and literal.
    raw = json.dumps(events, ensure_ascii=len(events) % 2 == 0).encode()
    assert len(raw) > POOL_BODY_BYTES
    return raw


def parsed_by_worker(pool: IntakePool, body: bytes, *, with_sha256: bool) -> ParsedBody | None:
    async def ask() -> ParsedBody | None:
        return await pool.parse(body, with_sha256=with_sha256)

    return asyncio.run(ask())


def ready_worker(pool: IntakePool, body: bytes) -> ParsedBody:
    """The first body starts the worker (and is left to the server); wait for it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parsed = parsed_by_worker(pool, body, with_sha256=True)
        if parsed is not None:
            return parsed
        time.sleep(0.05)
    raise AssertionError("the intake worker never answered")


@pytest.fixture
def pool() -> Iterator[IntakePool]:
    running = IntakePool(max_batch=1000)
    yield running
    running.close()


def test_the_worker_makes_the_drafts_the_server_makes(pool: IntakePool) -> None:
    intake = Intake(schemas=EventSchemas.bundled())
    for size in (300, 301):
        body = body_of([varied(n) for n in range(size)])
        expected = intake.parse(body)
        got = ready_worker(pool, body)
        assert got.is_batch and len(got.drafts) == len(expected.drafts)
        assert got.request_sha256() == expected.request_sha256()
        for mine, theirs in zip(got.drafts, expected.drafts, strict=True):
            assert mine.id_assigned == theirs.id_assigned
            if not theirs.id_assigned:
                assert mine.id == theirs.id
            assert (mine.type, mine.occurred_at, mine.party, mine.topic) == (
                theirs.type,
                theirs.occurred_at,
                theirs.party,
                theirs.topic,
            )
            # Equal, and of the same JSON types (json.dumps tells 1 from True).
            assert json.dumps(mine.data, sort_keys=True) == json.dumps(theirs.data, sort_keys=True)
            assert json.dumps(mine.source, sort_keys=True) == json.dumps(
                theirs.source, sort_keys=True
            )
            assert (mine.data_json, mine.source_json) == (theirs.data_json, theirs.source_json)
            sealed = {"ledger": "l", "seq": 1, "prev": "0" * 64, "recorded_at": "r", "actor": "a"}
            same_id = mine._replace(id=theirs.id)
            assert same_id.seal(**sealed).canonical() == theirs.seal(**sealed).canonical()


def test_the_worker_verifies_signatures_against_the_keys_it_is_given(pool: IntakePool) -> None:
    desk, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    events: list[dict[str, Any]] = []
    for n in range(300):
        event = position(stance="demand", occurred_at="2025-02-24T00:00:00Z", id=str(uuid.uuid4()))
        signer = other if n == 7 else desk  # one signature the registered key does not make
        events.append({**event, "author": sign_event(signer, "ua-desk", "talks", event)})
    events.append(position())  # and one unsigned
    body = body_of(events)
    ready_worker(pool, body)
    public = desk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    async def ask(authors: dict[str, bytes] | None, ledger: str = "talks") -> ParsedBody | None:
        return await pool.parse(body, with_sha256=False, ledger=ledger, authors=authors)

    parsed = asyncio.run(ask({"ua-desk": public}))
    assert parsed is not None
    checked = [d.signature_checked_with for d in parsed.drafts]
    assert checked[7] is None and checked[-1] is None
    assert all(key == public for n, key in enumerate(checked[:-1]) if n != 7)
    # Another ledger's bytes: no signature holds, nothing is marked.
    elsewhere = asyncio.run(
        pool.parse(body, with_sha256=False, ledger="x", authors={"ua-desk": public})
    )
    assert elsewhere is not None and not any(d.signature_checked_with for d in elsewhere.drafts)
    plain = asyncio.run(ask(None))
    assert plain is not None and not any(d.signature_checked_with for d in plain.drafts)


def test_the_hash_is_only_worked_out_when_asked_for(pool: IntakePool) -> None:
    body = body_of([varied(n) for n in range(300)])
    ready_worker(pool, body)
    parsed = parsed_by_worker(pool, body, with_sha256=False)
    assert parsed is not None
    with pytest.raises(ValueError, match="not kept"):
        parsed.request_sha256()


def test_a_refused_body_is_left_to_the_server(pool: IntakePool) -> None:
    good = body_of([varied(n) for n in range(300)])
    ready_worker(pool, good)
    events = [varied(n) for n in range(300)]
    events[7]["data"]["stance"] = "maybe"
    assert parsed_by_worker(pool, body_of(events), with_sha256=False) is None
    assert parsed_by_worker(pool, b"[" + b" " * POOL_BODY_BYTES, with_sha256=False) is None


def test_a_killed_worker_is_replaced(pool: IntakePool) -> None:
    body = body_of([varied(n) for n in range(300)])
    ready_worker(pool, body)
    executor = pool._executor
    assert executor is not None
    for pid in list(executor._processes):  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
    # The request that finds it dead is parsed in the server; a new worker follows.
    assert parsed_by_worker(pool, body, with_sha256=False) is None
    assert ready_worker(pool, body).drafts
    assert pool._executor is not executor


def test_a_closed_pool_leaves_every_body_to_the_server(pool: IntakePool) -> None:
    body = body_of([varied(n) for n in range(300)])
    ready_worker(pool, body)
    pool.close()
    assert parsed_by_worker(pool, body, with_sha256=False) is None


@pytest.fixture(params=[True, False], ids=["worker", "thread"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(
        f"sqlite:///{tmp_path}/ledger.db", tmp_path, intake_worker=request.param
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        token, _ = test_client.app.state.tokens.create(ADMIN_NAME, (Scope("admin"),))
        test_client.headers["Authorization"] = f"Bearer {token}"
        assert test_client.post("/v1/ledgers", json={"name": "talks"}).status_code == 201
        yield test_client


def test_large_batches_append_alike_with_or_without_the_worker(client: TestClient) -> None:
    first = [varied(n) for n in range(300)]
    headers = {"Content-Type": "application/json"}
    # Several, so that the worker (started by the first) parses some of them.
    for round_ in range(6):
        events = [dict(e, id=str(uuid.uuid4())) if "id" in e else e for e in first]
        answer = client.post(EVENTS, content=body_of(events), headers=headers)
        assert answer.status_code == 201, answer.text
        assert [r["seq"] for r in answer.json()] == list(
            range(round_ * 300 + 1, round_ * 300 + 301)
        )
    pool = client.app.state.intake_pool  # type: ignore[attr-defined]
    assert (pool is not None and pool.bodies_parsed > 0) == (pool is not None)
    stored = client.get(EVENTS, params={"after_seq": 1500, "limit": 300}).json()["items"]
    assert [r["data"] for r in stored] == [e["data"] for e in first]
    # A replay with the same key and body: the worker's hash matches the server's.
    keyed = {**headers, "Idempotency-Key": "batch-7"}
    events = [{k: v for k, v in e.items() if k != "id"} for e in first]
    answers = [client.post(EVENTS, content=body_of(events), headers=keyed) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 200, 200, 200]
    assert all(a.json() == answers[0].json() for a in answers)
    # The same body sent differently is the same request.
    respaced = json.dumps(events, indent=1).encode()
    assert client.post(EVENTS, content=respaced, headers=keyed).status_code == 200


def test_a_refused_large_batch_names_its_field_with_or_without_the_worker(
    client: TestClient,
) -> None:
    events = [varied(n) for n in range(300)]
    events[123]["data"]["stance"] = "maybe"
    for _ in range(4):
        answer = client.post(
            EVENTS, content=body_of(events), headers={"Content-Type": "application/json"}
        )
        assert_problem(answer, 422, field="[123].data.stance")
    assert client.get("/v1/ledgers/talks").json()["size"] == 0
