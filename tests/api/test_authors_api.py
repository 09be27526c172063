"""Authors over HTTP (format §1.4, docs/authors.md): admins register and revoke
desks' keys, a token bound to a desk appends only what that desk signed, and
every refusal is a problem naming the field."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from ledger.access import parse_scopes
from ledger.core.authors import sign_event
from ledger.core.signing import VerifierKey
from tests.api.conftest import assert_problem
from tests.conftest import position

LEDGER = "desks"
DESK = Ed25519PrivateKey.generate()
EU = Ed25519PrivateKey.generate()


def key_string(private: Ed25519PrivateKey, name: str) -> str:
    return VerifierKey.from_public_key(name, private.public_key()).to_string()


def signed(
    private: Ed25519PrivateKey = DESK, name: str = "ua-desk", **extra: Any
) -> dict[str, Any]:
    event = position(party="UA", occurred_at="2025-02-20T00:00:00Z", id=str(uuid.uuid4()), **extra)
    return {**event, "author": sign_event(private, name, LEDGER, event)}


def bearer(client: TestClient, name: str, scopes: str) -> dict[str, str]:
    token, _ = client.app.state.tokens.create(name, parse_scopes([scopes]))  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def desks(client: TestClient) -> TestClient:
    assert client.post("/v1/ledgers", json={"name": LEDGER}).status_code == 201
    for private, name in ((DESK, "ua-desk"), (EU, "eu-desk")):
        body = {"name": name, "verifier_key": key_string(private, name)}
        registered = client.post(f"/v1/ledgers/{LEDGER}/authors", json=body)
        assert registered.status_code == 201, registered.text
    return client


def test_an_admin_registers_a_desk_and_the_list_shows_the_record_that_did(
    desks: TestClient,
) -> None:
    listed = desks.get(f"/v1/ledgers/{LEDGER}/authors").json()["items"]
    assert [(a["name"], a["status"], a["registered_seq"]) for a in listed] == [
        ("eu-desk", "active", 2),
        ("ua-desk", "active", 1),
    ]
    record = desks.get(f"/v1/ledgers/{LEDGER}/events/1").json()
    assert record["type"] == "author.registered"
    assert record["data"]["verifier_key"] == key_string(DESK, "ua-desk")


def test_a_signed_event_appends_on_the_event_loop_and_keeps_its_signature(
    desks: TestClient,
) -> None:
    # Several in a row: the later ones go the ways a busy server takes (sealed
    # ahead on SQLite, one statement on PostgreSQL), which must check too.
    for _ in range(3):
        body = signed()
        posted = desks.post(f"/v1/ledgers/{LEDGER}/events", json=body)
        assert posted.status_code == 201, posted.text
        stored = desks.get(posted.headers["Location"]).json()
        assert stored["author"] == body["author"]
        forged = {**signed(), "data": {"stance": "offer", "summary": "edited"}}
        refused = desks.post(f"/v1/ledgers/{LEDGER}/events", json=forged)
        assert_problem(refused, 401, field="author")
    unsigned = desks.post(f"/v1/ledgers/{LEDGER}/events", json=position())
    assert unsigned.status_code == 201


def test_a_token_bound_to_a_desk_appends_only_what_that_desk_signed(
    desks: TestClient,
) -> None:
    headers = bearer(desks, "ua-desk-token", "append")
    bound = desks.post(
        f"/v1/ledgers/{LEDGER}/authors",
        json={
            "name": "ua-bound",
            "verifier_key": key_string(DESK, "ua-bound"),
            "token": "ua-desk-token",
        },
    )
    assert bound.status_code == 201, bound.text
    url = f"/v1/ledgers/{LEDGER}/events"
    assert_problem(desks.post(url, json=position(), headers=headers), 401, field="author")
    assert_problem(desks.post(url, json=signed(), headers=headers), 403, field="author")
    batch = [signed(name="ua-bound"), position()]
    assert_problem(desks.post(url, json=batch, headers=headers), 401, field="[1].author")
    ok = desks.post(url, json=signed(name="ua-bound"), headers=headers)
    assert ok.status_code == 201, ok.text
    tokens = {t.name: t for t in desks.app.state.tokens.list()}  # type: ignore[attr-defined]
    assert tokens["ua-desk-token"].author == "ua-bound"


def test_a_revoked_desk_is_refused_and_its_earlier_records_stay(desks: TestClient) -> None:
    url = f"/v1/ledgers/{LEDGER}/events"
    assert desks.post(url, json=signed()).status_code == 201
    revoked = desks.request(
        "DELETE", f"/v1/ledgers/{LEDGER}/authors/ua-desk", json={"reason": "key lost"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["author"]["status"] == "revoked"
    problem = assert_problem(desks.post(url, json=signed()), 403, field="author")
    assert "revoked" in problem["detail"]
    assert desks.delete(f"/v1/ledgers/{LEDGER}/authors/eu-desk").status_code == 200
    assert_problem(desks.delete(f"/v1/ledgers/{LEDGER}/authors/eu-desk"), 409)
    assert_problem(desks.delete(f"/v1/ledgers/{LEDGER}/authors/nobody"), 404)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "ua-desk"}, 422, "verifier_key"),
        ({"name": "bad name", "verifier_key": "x"}, 422, "name"),
        ({"name": "x-desk", "verifier_key": "not a key"}, 422, "verifier_key"),
        ({"name": "x-desk", "verifier_key": key_string(DESK, "y-desk")}, 422, "verifier_key"),
        (
            {"name": "x-desk", "verifier_key": key_string(DESK, "x-desk"), "token": "nope"},
            422,
            "token",
        ),
        ({"name": "x-desk", "verifier_key": key_string(DESK, "x-desk"), "extra": 1}, 422, "extra"),
        ({"name": "ua-desk", "verifier_key": key_string(EU, "ua-desk")}, 409, None),
    ],
)
def test_a_bad_registration_is_a_problem_naming_its_field(
    desks: TestClient, body: dict[str, Any], status: int, field: str | None
) -> None:
    response = desks.post(f"/v1/ledgers/{LEDGER}/authors", json=body)
    assert_problem(response, status, **({"field": field} if field else {}))


def test_only_an_admin_registers_or_revokes(desks: TestClient) -> None:
    headers = bearer(desks, "appender", "append")
    body = {"name": "x-desk", "verifier_key": key_string(DESK, "x-desk")}
    assert_problem(desks.post(f"/v1/ledgers/{LEDGER}/authors", json=body, headers=headers), 403)
    assert_problem(desks.delete(f"/v1/ledgers/{LEDGER}/authors/ua-desk", headers=headers), 403)
    assert desks.get(f"/v1/ledgers/{LEDGER}/authors", headers=headers).status_code == 200


def test_a_client_cannot_post_a_registration_itself(desks: TestClient) -> None:
    event = {"type": "author.registered", "occurred_at": "2025-02-20", "data": {"name": "x"}}
    assert_problem(desks.post(f"/v1/ledgers/{LEDGER}/events", json=event), 422, field="type")


def test_a_large_signed_batch_parsed_in_the_intake_worker_keeps_every_signature(
    desks: TestClient,
) -> None:
    batch = [signed(stance=stance) for stance in ("oppose", "demand", "offer") * 100]
    assert len(json.dumps(batch)) > 64 * 1024  # over POOL_BODY_BYTES: the worker parses it
    posted = desks.post(f"/v1/ledgers/{LEDGER}/events", json=batch)
    assert posted.status_code == 201, posted.text
    first = posted.json()[0]["seq"]
    stored = desks.get(f"/v1/ledgers/{LEDGER}/events/{first + 299}").json()
    assert stored["author"] == batch[-1]["author"]
    fresh = [signed(stance=stance) for stance in ("oppose", "demand", "offer") * 100]
    fresh[150] = {**fresh[150], "topic": "edited"}
    refused = desks.post(f"/v1/ledgers/{LEDGER}/events", json=fresh)
    assert_problem(refused, 401, field="[150].author")
