"""HTTP contract of ``/v1/ledgers/{ledger}/events`` and ``/head``.

Every test runs on SQLite and, with LEDGER_TEST_POSTGRES_URL set, PostgreSQL.
A refused request answers RFC 9457 ``application/problem+json`` naming the
field at fault, and leaves the ledger exactly as it was (same size, same head
hash). No request in this module may answer 500.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import rfc8785
from fastapi.testclient import TestClient

from ledger.access import Scope
from ledger.core.chain import verify_chain
from ledger.core.records import Record
from ledger.core.times import RECORDED_AT_PATTERN
from ledger.store.recorder import Receipt
from tests.api.conftest import ANY, assert_problem
from tests.conftest import position

LEDGER = "talks"
EVENTS = f"/v1/ledgers/{LEDGER}/events"
ZEROS = "0" * 64
MAX_BODY = 1024 * 1024


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def talks(client: TestClient) -> str:
    """A ledger holding two records, so a refused request has a head to keep."""
    assert client.post("/v1/ledgers", json={"name": LEDGER}).status_code == 201
    response = client.post(EVENTS, json=[position(party="US"), position(party="UA")])
    assert response.status_code == 201, response.text
    return LEDGER


def create_ledger(client: TestClient, name: str) -> None:
    response = client.post("/v1/ledgers", json={"name": name})
    assert response.status_code == 201, response.text


def head(client: TestClient, ledger: str = LEDGER) -> dict[str, Any]:
    response = client.get(f"/v1/ledgers/{ledger}/head")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def refused(
    client: TestClient,
    method: str,
    url: str,
    *,
    status: int,
    field: Any = ANY,
    ledger: str = LEDGER,
    **kwargs: Any,
) -> dict[str, Any]:
    """Send a request that must be refused, and check the ledger did not change."""
    before = head(client, ledger)
    problem = assert_problem(client.request(method, url, **kwargs), status, field)
    assert head(client, ledger) == before
    return problem


def post_raw(client: TestClient, raw: bytes, url: str = EVENTS, **headers: str) -> httpx.Response:
    return client.post(url, content=raw, headers={"content-type": "application/json", **headers})


def record_at(client: TestClient, seq: int, ledger: str = LEDGER) -> bytes:
    response = client.get(f"/v1/ledgers/{ledger}/events/{seq}")
    assert response.status_code == 200, response.text
    return response.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def with_data(**members: Any) -> dict[str, Any]:
    event = position()
    event["data"] = {**event["data"], **members}  # type: ignore[dict-item]
    return event


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- appending one event ---------------------------------------------------------


def test_an_appended_event_gets_a_receipt_and_a_location(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.post(EVENTS, json=position())
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    receipt = response.json()
    assert {"seq", "id", "hash", "prev", "recorded_at"} <= set(receipt)
    assert receipt["seq"] == 1
    assert receipt["prev"] == ZEROS
    assert str(uuid.UUID(receipt["id"])) == receipt["id"]
    assert RECORDED_AT_PATTERN.match(receipt["recorded_at"])
    assert response.headers["location"] == f"{EVENTS}/1"
    assert head(client) == {"size": 1, "head_hash": receipt["hash"]}


def test_receipts_are_written_member_for_member_as_receipt_to_dict(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    single = client.post(EVENTS, json=position())
    batch = client.post(EVENTS, json=[position(), position(party="UA")])
    for raw in (single.json(), *batch.json()):
        receipt = Receipt(**raw)
        # Same members, same values, same order: the body is the receipt.
        assert list(raw.items()) == list(receipt.to_dict().items())
    assert batch.json()[1]["tree_size"] == 3


def test_the_receipt_hash_is_the_sha256_of_the_records_canonical_bytes(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.post(EVENTS, json=position(occurred_at="2025-02-24T10:00:00+01:00"))
    receipt = response.json()
    body = client.get(response.headers["location"]).content
    assert body == record_at(client, 1)
    assert sha256(body) == receipt["hash"]
    assert bytes(rfc8785.dumps(json.loads(body))) == body
    record = Record.from_dict(json.loads(body))
    assert record.seq == 1
    assert record.id == receipt["id"]
    assert record.prev == ZEROS
    assert record.recorded_at == receipt["recorded_at"]


def test_the_server_assigns_its_members_and_stores_occurred_at_in_utc(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    event_id = str(uuid.uuid4())
    event = position(occurred_at="2025-02-24T10:00:00+01:00", id=event_id)
    receipt = client.post(EVENTS, json=event).json()
    record = json.loads(record_at(client, 1))
    assert record == {
        "ledger": LEDGER,
        "seq": 1,
        "id": event_id,
        "type": "position.stated",
        "party": "US",
        "topic": "security-guarantees",
        "occurred_at": "2025-02-24T09:00:00Z",
        "recorded_at": receipt["recorded_at"],
        "data": event["data"],
        "source": event["source"],
        "actor": "tester",
        "prev": ZEROS,
    }


def test_optional_members_left_out_stay_out_of_the_record(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    event = {
        "type": "topic.registered",
        "topic": "revenue-share",
        "occurred_at": "2025-02-01",
        "data": {"title": "Revenue share"},
    }
    assert client.post(EVENTS, json=event).status_code == 201
    record = json.loads(record_at(client, 1))
    assert "party" not in record
    assert "source" not in record
    assert None not in record.values()


def test_each_receipt_links_to_the_one_before(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    first = client.post(EVENTS, json=position()).json()
    second = client.post(EVENTS, json=position(party="UA")).json()
    assert second["seq"] == 2
    assert second["prev"] == first["hash"]
    assert second["recorded_at"] >= first["recorded_at"]
    assert head(client) == {"size": 2, "head_hash": second["hash"]}


def test_a_charset_of_utf8_is_accepted(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.post(
        EVENTS,
        content=json.dumps(position()).encode(),
        headers={"content-type": "application/json; charset=UTF-8"},
    )
    assert response.status_code == 201, response.text


def test_non_ascii_nfc_text_is_stored_as_sent(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    summary = "Київ requires guarantées 🕊"
    raw = json.dumps(with_data(summary=summary), ensure_ascii=False).encode()
    receipt = post_raw(client, raw).json()
    body = record_at(client, 1)
    assert json.loads(body)["data"]["summary"] == summary
    assert summary.encode() in body
    assert sha256(body) == receipt["hash"]


def test_integers_just_below_two_to_the_53_are_accepted(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    terms = {"max": 2**53 - 1, "min": -(2**53 - 1)}
    assert client.post(EVENTS, json=with_data(terms=terms)).status_code == 201
    assert json.loads(record_at(client, 1))["data"]["terms"] == terms


def test_an_occurred_at_four_minutes_ahead_is_accepted(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    soon = utc(datetime.now(UTC) + timedelta(minutes=4))
    assert client.post(EVENTS, json=position(occurred_at=soon)).status_code == 201


def test_a_body_of_exactly_one_mebibyte_is_accepted(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    raw = json.dumps(position()).encode()
    raw += b" " * (MAX_BODY - len(raw))
    assert len(raw) == MAX_BODY
    assert post_raw(client, raw).status_code == 201


# -- batches ---------------------------------------------------------------------


def test_a_batch_is_appended_in_order_and_answers_a_list_of_receipts(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    events = [position(party=p) for p in ("US", "UA", "EU")]
    response = client.post(EVENTS, json=events)
    assert response.status_code == 201, response.text
    receipts = response.json()
    assert isinstance(receipts, list)
    assert [r["seq"] for r in receipts] == [1, 2, 3]
    assert receipts[0]["prev"] == ZEROS
    for before, after in itertools.pairwise(receipts):
        assert after["prev"] == before["hash"]
    for receipt in receipts:
        assert sha256(record_at(client, receipt["seq"])) == receipt["hash"]
    assert [json.loads(record_at(client, s))["party"] for s in (1, 2, 3)] == ["US", "UA", "EU"]


def test_a_batch_of_one_is_still_a_list(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.post(EVENTS, json=[position()])
    assert response.status_code == 201
    assert isinstance(response.json(), list)
    assert len(response.json()) == 1


def test_a_batch_of_1000_is_accepted(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.post(EVENTS, json=[position()] * 1000)
    assert response.status_code == 201, response.text
    receipts = response.json()
    assert len(receipts) == 1000
    assert head(client) == {"size": 1000, "head_hash": receipts[-1]["hash"]}


def test_a_batch_of_1001_is_refused_whole(client: TestClient, talks: str) -> None:
    refused(client, "POST", EVENTS, json=[position()] * 1001, status=422, field="(root)")


def test_an_empty_batch_is_refused(client: TestClient, talks: str) -> None:
    refused(client, "POST", EVENTS, json=[], status=422, field="(root)")


def test_a_batch_with_an_invalid_third_event_writes_nothing(client: TestClient, talks: str) -> None:
    events = [position(), position(party="UA"), position(stance="maybe"), position()]
    problem = refused(client, "POST", EVENTS, json=events, status=422)
    assert problem["field"] == "[2].data.stance"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (position(seq=9), "[2].seq"),
        (with_data(share=0.5), "[2].data.share"),
        (position(occurred_at="2025-02-30"), "[2].occurred_at"),
        ({"type": "nope"}, "[2].type"),
        ("not an event", "[2]"),
    ],
)
def test_the_field_of_a_batch_refusal_starts_with_the_events_index(
    client: TestClient, talks: str, bad: Any, field: str
) -> None:
    refused(client, "POST", EVENTS, json=[position(), position(), bad], status=422, field=field)


def test_a_batch_reusing_an_id_already_in_the_ledger_writes_nothing(
    client: TestClient, talks: str
) -> None:
    used = json.loads(record_at(client, 1))["id"]
    events = [position(), position(id=used), position()]
    refused(client, "POST", EVENTS, json=events, status=409, field="[1].id")


def test_a_single_event_reusing_an_id_is_a_conflict(client: TestClient, talks: str) -> None:
    used = json.loads(record_at(client, 2))["id"]
    refused(client, "POST", EVENTS, json=position(id=used), status=409, field="id")


def test_a_batch_naming_one_id_twice_writes_nothing(client: TestClient, talks: str) -> None:
    twice = str(uuid.uuid4())
    events = [position(id=twice), position(), position(id=twice)]
    refused(client, "POST", EVENTS, json=events, status=409, field="[2].id")


# -- every kind of bad input -------------------------------------------------------

FLOAT_TERMS = {"share": 0.5}
BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("unknown type", position(type="position.guessed"), "type"),
    ("type missing", {k: v for k, v in position().items() if k != "type"}, "type"),
    ("client-set seq", position(seq=3), "seq"),
    ("client-set prev", position(prev=ZEROS), "prev"),
    ("client-set recorded_at", position(recorded_at="2025-02-24T10:00:00.000000Z"), "recorded_at"),
    ("client-set actor", position(actor="root"), "actor"),
    ("client-set ledger", position(ledger=LEDGER), "ledger"),
    ("float in data.terms", with_data(terms=FLOAT_TERMS), "data.terms.share"),
    ("float in a list", with_data(terms={"shares": [1, 2, 0.25]}), "data.terms.shares[2]"),
    ("float in source", position(source={"name": "CNN", "kind": "media", "x": 1e3}), "source.x"),
    ("integer 2^53", with_data(terms={"amount": 2**53}), "data.terms.amount"),
    ("NFD summary", with_data(summary="Kyiv cafe\u0301"), "data.summary"),
    ("NFD member name", with_data(terms={"e\u0301": 1}), "data.terms.e\u0301"),
    ("occurred_at without offset", position(occurred_at="2025-02-24T10:00:00"), "occurred_at"),
    ("occurred_at impossible", position(occurred_at="2025-02-30"), "occurred_at"),
    ("occurred_at fraction", position(occurred_at="2025-02-24T10:00:00.5Z"), "occurred_at"),
    ("occurred_at offset +24:00", position(occurred_at="2025-02-24T10:00:00+24:00"), "occurred_at"),
    (
        "occurred_at missing",
        {k: v for k, v in position().items() if k != "occurred_at"},
        "occurred_at",
    ),
    ("party lower-case", position(party="usa"), "party"),
    ("party with a space", position(party="U S"), "party"),
    ("topic capitalized", position(topic="Security"), "topic"),
    ("stance unknown", position(stance="maybe"), "data.stance"),
    ("summary empty", with_data(summary=""), "data.summary"),
    ("data missing", {k: v for k, v in position().items() if k != "data"}, "data"),
    ("unknown member", position(comment="hi"), "comment"),
    ("unknown data member", with_data(mood="tense"), "data.mood"),
    ("source kind unknown", position(source={"name": "CNN", "kind": "rumour"}), "source.kind"),
    ("id not a lower-case UUID", position(id="ABC"), "id"),
]


@pytest.mark.parametrize(
    ("event", "field"), [(e, f) for _, e, f in BAD_EVENTS], ids=[n for n, _, _ in BAD_EVENTS]
)
def test_an_invalid_event_is_refused_naming_its_field(
    client: TestClient, talks: str, event: Any, field: str
) -> None:
    refused(client, "POST", EVENTS, json=event, status=422, field=field)


@pytest.mark.parametrize("minutes", [6, 60 * 24 * 365])
def test_an_occurred_at_more_than_five_minutes_ahead_is_refused(
    client: TestClient, talks: str, minutes: int
) -> None:
    later = datetime.now(UTC) + timedelta(minutes=minutes)
    refused(
        client,
        "POST",
        EVENTS,
        json=position(occurred_at=utc(later)),
        status=422,
        field="occurred_at",
    )
    as_local = later.astimezone(timezone(timedelta(hours=-5)))
    refused(
        client,
        "POST",
        EVENTS,
        json=position(occurred_at=as_local.strftime("%Y-%m-%dT%H:%M:%S-05:00")),
        status=422,
        field="occurred_at",
    )


RAW_BAD_BODIES: list[tuple[str, bytes, int, Any]] = [
    ("not JSON", b"this is not json", 400, None),
    ("truncated JSON", b'{"type":"position.stated"', 400, None),
    ("empty body", b"", 400, None),
    ("invalid UTF-8", b'{"type":"position.stated","x":"\xff"}', 400, None),
    ("a JSON string", b'"position.stated"', 422, "(root)"),
    ("a JSON number", b"42", 422, "(root)"),
    ("JSON null", b"null", 422, "(root)"),
    ("JSON true", b"true", 422, "(root)"),
    ("an array of numbers", b"[1]", 422, "[0]"),
    ("a lone surrogate", json.dumps(with_data(summary="\ud800")).encode(), 422, "data.summary"),
    ("NaN", b'{"type":"position.stated","x":NaN}', 422, "x"),
    (
        "a member named twice",
        b'{"type":"position.stated","party":"US","topic":"t","occurred_at":"2025-02-24",'
        b'"data":{"stance":"oppose","stance":"support","summary":"s"},'
        b'"source":{"name":"CNN","kind":"media"}}',
        422,
        "data.stance",
    ),
    ("type named twice", b'{"type":"position.stated","type":"x"}', 422, "type"),
]


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [(r, s, f) for _, r, s, f in RAW_BAD_BODIES],
    ids=[n for n, _, _, _ in RAW_BAD_BODIES],
)
def test_a_body_that_is_not_a_strict_json_event_is_refused(
    client: TestClient, talks: str, raw: bytes, status: int, field: Any
) -> None:
    problem = refused(
        client,
        "POST",
        EVENTS,
        content=raw,
        headers={"content-type": "application/json"},
        status=status,
    )
    if field is not None:
        assert problem["field"] == field


def test_nesting_deeper_than_64_levels_is_refused(client: TestClient, talks: str) -> None:
    deep: Any = 1
    for _ in range(70):
        deep = [deep]
    refused(client, "POST", EVENTS, json=with_data(terms={"deep": deep}), status=422)


def test_absurd_nesting_is_refused_without_a_crash(client: TestClient, talks: str) -> None:
    raw = b'{"type":"position.stated","data":{"terms":' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
    refused(
        client,
        "POST",
        EVENTS,
        content=raw,
        headers={"content-type": "application/json"},
        status=422,
    )


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_body_not_sent_as_utf8_json_is_an_unsupported_media_type(
    client: TestClient, talks: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    raw = json.dumps(position()).encode()
    refused(client, "POST", EVENTS, content=raw, headers=headers, status=415)


def test_a_body_over_one_mebibyte_is_too_large(client: TestClient, talks: str) -> None:
    raw = json.dumps(position()).encode()
    raw += b" " * (MAX_BODY + 1 - len(raw))
    refused(
        client,
        "POST",
        EVENTS,
        content=raw,
        headers={"content-type": "application/json"},
        status=413,
    )


def test_a_chunked_body_over_one_mebibyte_is_too_large(client: TestClient, talks: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield json.dumps(position()).encode()
        for _ in range(17):
            yield b" " * 65536

    before = head(client)
    response = client.post(EVENTS, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_problem(response, 413)
    assert head(client) == before


def test_a_too_large_body_is_refused_before_it_is_parsed(client: TestClient, talks: str) -> None:
    raw = b"x" * (MAX_BODY + 1)
    refused(
        client,
        "POST",
        EVENTS,
        content=raw,
        headers={"content-type": "application/json"},
        status=413,
    )


def test_appending_to_an_unknown_ledger_is_not_found(client: TestClient, talks: str) -> None:
    problem = refused(client, "POST", "/v1/ledgers/nowhere/events", json=position(), status=404)
    assert "field" not in problem


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_records_cannot_be_changed_or_deleted(client: TestClient, talks: str, method: str) -> None:
    before = record_at(client, 1)
    problem = refused(client, method, f"{EVENTS}/1", json=position(), status=405)
    assert problem["status"] == 405
    assert record_at(client, 1) == before


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_the_event_collection_cannot_be_replaced_or_deleted(
    client: TestClient, talks: str, method: str
) -> None:
    refused(client, method, EVENTS, json=[position()], status=405)


def test_every_stored_record_is_a_valid_record_even_for_early_years(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.post(EVENTS, json=position(occurred_at="0999-12-31"))
    if response.status_code == 422:
        return
    assert response.status_code == 201
    Record.from_dict(json.loads(record_at(client, 1)))


def test_an_occurred_at_in_non_ascii_digits_is_refused(client: TestClient, talks: str) -> None:
    arabic = "\u0662\u0660\u0662\u0665-\u0660\u0662-\u0662\u0664"
    refused(
        client, "POST", EVENTS, json=position(occurred_at=arabic), status=422, field="occurred_at"
    )


def _correction(changes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "record.corrected",
        "occurred_at": "2025-02-25",
        "data": {"target_seq": 1, "reason": "Wrong date.", "changes": changes},
        **extra,
    }


CNN = {"name": "CNN", "kind": "media"}
UNREAL_DATES: list[tuple[str, Any, str, str]] = [
    ("occurred_at", position(occurred_at="9999-99-99"), "occurred_at", "9999-99-99"),
    (
        "source.reported_at",
        position(source={**CNN, "reported_at": "9999-99-99"}),
        "source.reported_at",
        "9999-99-99",
    ),
    (
        "source.reported_at, 29 February 2025",
        position(source={**CNN, "reported_at": "2025-02-29T10:00:00Z"}),
        "source.reported_at",
        "2025-02-29T10:00:00Z",
    ),
    (
        "data.changes.occurred_at",
        _correction({"occurred_at": "2025-02-30"}),
        "data.changes.occurred_at",
        "2025-02-30",
    ),
    (
        "data.changes.source.reported_at",
        _correction({"source": {**CNN, "reported_at": "2025-04-31"}}),
        "data.changes.source.reported_at",
        "2025-04-31",
    ),
    (
        "a batch item's source.reported_at",
        [position(), position(source={**CNN, "reported_at": "2025-13-01"})],
        "[1].source.reported_at",
        "2025-13-01",
    ),
]


@pytest.mark.parametrize(
    ("event", "field", "text"),
    [(e, f, t) for _, e, f, t in UNREAL_DATES],
    ids=[n for n, *_ in UNREAL_DATES],
)
def test_every_date_member_must_be_a_real_calendar_date(
    client: TestClient, talks: str, event: Any, field: str, text: str
) -> None:
    problem = refused(client, "POST", EVENTS, json=event, status=422, field=field)
    # Said in words, not by the pattern that refused it.
    assert f"{text!r} is not a real " in problem["detail"], problem
    assert "pattern" not in problem["detail"], problem


def test_a_real_reported_at_on_the_29th_of_february_of_a_leap_year_is_accepted(
    client: TestClient, talks: str
) -> None:
    event = position(source={**CNN, "reported_at": "2024-02-29T23:59:59+23:59"})
    assert client.post(EVENTS, json=event).status_code == 201


# -- Idempotency-Key -----------------------------------------------------------------


def test_a_retry_with_the_same_key_and_body_replays_the_receipt(
    client: TestClient, talks: str
) -> None:
    key = {"idempotency-key": "retry-1"}
    first = client.post(EVENTS, json=position(), headers=key)
    assert first.status_code == 201
    after_first = head(client)
    again = client.post(EVENTS, json=position(), headers=key)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert head(client) == after_first


def test_a_retry_may_reorder_members_and_whitespace(client: TestClient, talks: str) -> None:
    key = {"idempotency-key": "retry-2", "content-type": "application/json"}
    event = with_data(terms={"b": 1, "a": "Київ"})
    first = client.post(EVENTS, content=json.dumps(event).encode(), headers=key)
    assert first.status_code == 201
    after_first = head(client)
    reordered = json.dumps(dict(reversed(event.items())), indent=3, ensure_ascii=False).encode()
    again = client.post(EVENTS, content=b"\n  " + reordered + b"\n", headers=key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert head(client) == after_first


def test_a_retry_of_an_event_without_id_keeps_the_assigned_id(
    client: TestClient, talks: str
) -> None:
    key = {"idempotency-key": "no-id"}
    first = client.post(EVENTS, json=position(), headers=key).json()
    again = client.post(EVENTS, json=position(), headers=key).json()
    assert again["id"] == first["id"]


def test_the_same_key_with_another_body_is_refused(client: TestClient, talks: str) -> None:
    key = {"idempotency-key": "retry-3"}
    assert client.post(EVENTS, json=position(), headers=key).status_code == 201
    refused(client, "POST", EVENTS, json=position(stance="support"), headers=key, status=422)
    refused(client, "POST", EVENTS, json=[position()], headers=key, status=422)


def test_a_key_is_scoped_to_its_ledger(client: TestClient, talks: str) -> None:
    create_ledger(client, "other")
    key = {"idempotency-key": "shared"}
    mine = client.post(EVENTS, json=position(), headers=key)
    theirs = client.post("/v1/ledgers/other/events", json=position(), headers=key)
    assert mine.status_code == 201
    assert theirs.status_code == 201
    assert theirs.json()["seq"] == 1
    assert theirs.json()["prev"] == ZEROS
    assert head(client, "other")["size"] == 1


def test_a_retried_batch_replays_the_list(client: TestClient, talks: str) -> None:
    key = {"idempotency-key": "batch-1"}
    events = [position(), position(party="UA"), position(party="EU")]
    first = client.post(EVENTS, json=events, headers=key)
    assert first.status_code == 201
    after_first = head(client)
    again = client.post(EVENTS, json=events, headers=key)
    assert again.status_code == 200
    assert isinstance(again.json(), list)
    assert again.json() == first.json()
    assert head(client) == after_first


def test_a_retry_replays_even_after_the_head_moved(client: TestClient, talks: str) -> None:
    key = {"idempotency-key": "moved"}
    first = client.post(EVENTS, json=position(), params={"expected_seq": 2}, headers=key)
    assert first.status_code == 201
    assert client.post(EVENTS, json=position()).status_code == 201
    again = client.post(EVENTS, json=position(), params={"expected_seq": 2}, headers=key)
    assert again.status_code == 200
    assert again.json() == first.json()


def test_a_refused_request_does_not_use_up_its_key(client: TestClient, talks: str) -> None:
    key = {"idempotency-key": "fix-and-retry"}
    refused(client, "POST", EVENTS, json=position(stance="maybe"), headers=key, status=422)
    refused(
        client, "POST", EVENTS, json=position(), params={"expected_seq": 0}, headers=key, status=409
    )
    assert client.post(EVENTS, json=position(), headers=key).status_code == 201


def desk(client: TestClient, name: str) -> dict[str, str]:
    """The Authorization header of a new token ``name`` that may append."""
    token, _ = client.app.state.tokens.create(name, (Scope("append"),))  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def test_two_tokens_may_use_one_key_for_different_events(client: TestClient, talks: str) -> None:
    key = {"idempotency-key": "desk-1"}
    first = client.post(EVENTS, json=position(), headers={**desk(client, "desk-a"), **key})
    second = client.post(
        EVENTS, json=position(stance="support"), headers={**desk(client, "desk-b"), **key}
    )
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert second.json()["seq"] == first.json()["seq"] + 1
    assert json.loads(record_at(client, second.json()["seq"]))["actor"] == "desk-b"


def test_another_tokens_key_and_body_make_its_own_append(client: TestClient, talks: str) -> None:
    key = {"idempotency-key": "desk-2"}
    first = client.post(EVENTS, json=position(), headers={**desk(client, "desk-a"), **key})
    assert first.status_code == 201, first.text
    before = head(client)
    other = client.post(EVENTS, json=position(), headers={**desk(client, "desk-b"), **key})
    assert other.status_code == 201, other.text
    assert "idempotent-replayed" not in other.headers
    assert other.json()["seq"] == before["size"] + 1
    assert other.json()["id"] != first.json()["id"]
    assert json.loads(record_at(client, other.json()["seq"]))["actor"] == "desk-b"
    assert head(client)["size"] == before["size"] + 1


def test_each_token_replays_its_own_receipt_for_a_shared_key(
    client: TestClient, talks: str
) -> None:
    key = {"idempotency-key": "desk-3"}
    a, b = desk(client, "desk-a"), desk(client, "desk-b")
    first_a = client.post(EVENTS, json=position(), headers={**a, **key})
    first_b = client.post(EVENTS, json=position(), headers={**b, **key})
    assert (first_a.status_code, first_b.status_code) == (201, 201)
    after = head(client)
    again_a = client.post(EVENTS, json=position(), headers={**a, **key})
    again_b = client.post(EVENTS, json=position(), headers={**b, **key})
    assert (again_a.status_code, again_b.status_code) == (200, 200)
    assert again_a.json() == first_a.json()
    assert again_b.json() == first_b.json()
    assert head(client) == after


@pytest.mark.parametrize("key", ["x" * 300, "tab\there"], ids=["300 characters", "a tab"])
def test_a_malformed_idempotency_key_is_refused(client: TestClient, talks: str, key: str) -> None:
    refused(
        client,
        "POST",
        EVENTS,
        json=position(),
        headers={"idempotency-key": key},
        status=422,
        field="Idempotency-Key",
    )


# -- expected_seq ---------------------------------------------------------------------


def test_expected_seq_at_the_head_appends(client: TestClient, talks: str) -> None:
    response = client.post(EVENTS, json=position(), params={"expected_seq": 2})
    assert response.status_code == 201
    assert response.json()["seq"] == 3


def test_expected_seq_zero_appends_to_an_empty_ledger(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.post(EVENTS, json=[position()], params={"expected_seq": 0})
    assert response.status_code == 201


@pytest.mark.parametrize("expected", [0, 1, 3, 100])
def test_expected_seq_off_the_head_is_a_conflict(
    client: TestClient, talks: str, expected: int
) -> None:
    problem = refused(
        client, "POST", EVENTS, json=position(), params={"expected_seq": expected}, status=409
    )
    assert problem["expected_seq"] == expected
    assert problem["head_seq"] == 2


@pytest.mark.parametrize("expected", ["-1", "abc", "1.5"])
def test_an_expected_seq_that_is_not_a_seq_is_refused(
    client: TestClient, talks: str, expected: str
) -> None:
    refused(
        client,
        "POST",
        EVENTS,
        json=position(),
        params={"expected_seq": expected},
        status=422,
        field="expected_seq",
    )


# -- reading ---------------------------------------------------------------------------


@pytest.fixture
def five(client: TestClient) -> list[dict[str, Any]]:
    """A ledger of five records; their receipts."""
    create_ledger(client, LEDGER)
    events = [position(party=p) for p in ("US", "UA", "EU", "RU", "GB")]
    response = client.post(EVENTS, json=events)
    assert response.status_code == 201
    receipts: list[dict[str, Any]] = response.json()
    return receipts


def page(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(
    ("after_seq", "limit", "seqs", "next_after_seq"),
    [
        (0, 2, [1, 2], 2),
        (2, 2, [3, 4], 4),
        (4, 2, [5], None),
        (3, 2, [4, 5], None),
        (0, 5, [1, 2, 3, 4, 5], None),
        (0, 1000, [1, 2, 3, 4, 5], None),
        (5, 10, [], None),
        (99, 10, [], None),
    ],
)
def test_pages_follow_next_after_seq_to_the_head(
    client: TestClient,
    five: list[dict[str, Any]],
    after_seq: int,
    limit: int,
    seqs: list[int],
    next_after_seq: int | None,
) -> None:
    result = page(client, after_seq=after_seq, limit=limit)
    assert set(result) == {"items", "next_after_seq"}
    assert [item["seq"] for item in result["items"]] == seqs
    assert result["next_after_seq"] == next_after_seq


def test_walking_the_pages_visits_every_record_once(
    client: TestClient, five: list[dict[str, Any]]
) -> None:
    seen: list[int] = []
    after: int | None = 0
    while after is not None:
        result = page(client, after_seq=after, limit=2)
        seen += [item["seq"] for item in result["items"]]
        after = result["next_after_seq"]
    assert seen == [1, 2, 3, 4, 5]


def test_the_default_page_holds_every_record_of_a_small_ledger(
    client: TestClient, five: list[dict[str, Any]]
) -> None:
    result = page(client)
    assert len(result["items"]) == 5
    assert result["next_after_seq"] is None


def test_each_listed_record_is_exactly_its_canonical_bytes(
    client: TestClient, five: list[dict[str, Any]]
) -> None:
    response = client.get(EVENTS)
    items = response.json()["items"]
    canonical = [bytes(rfc8785.dumps(item)) for item in items]
    assert [sha256(c) for c in canonical] == [r["hash"] for r in five]
    assert response.content == b'{"items":[' + b",".join(canonical) + b'],"next_after_seq":null}'
    assert verify_chain(canonical, ledger=LEDGER) == five[-1]["hash"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after_seq": -1}, "after_seq"),
        ({"after_seq": "first"}, "after_seq"),
    ],
)
def test_paging_parameters_out_of_range_are_refused(
    client: TestClient, talks: str, params: dict[str, Any], field: str
) -> None:
    refused(client, "GET", EVENTS, params=params, status=422, field=field)


@pytest.mark.parametrize("after_seq", [2**63, 10**20])
def test_an_after_seq_beyond_any_record_number_is_not_a_server_error(
    client: TestClient, five: list[dict[str, Any]], after_seq: int
) -> None:
    response = client.get(EVENTS, params={"after_seq": after_seq})
    if response.status_code == 422:
        assert_problem(response, 422, field="after_seq")
    else:
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_after_seq": None}


def test_ndjson_streams_every_record_as_one_canonical_line(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    receipts = client.post(EVENTS, json=[position()] * 300).json()
    response = client.get(EVENTS, headers={"accept": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.content.endswith(b"\n")
    lines = response.content.split(b"\n")[:-1]
    assert len(lines) == 300
    for line, receipt in zip(lines, receipts, strict=True):
        assert bytes(rfc8785.dumps(json.loads(line))) == line
        assert sha256(line) == receipt["hash"]
    assert verify_chain(lines, ledger=LEDGER) == head(client)["head_hash"]


def test_ndjson_starts_after_after_seq(client: TestClient, five: list[dict[str, Any]]) -> None:
    response = client.get(
        EVENTS, params={"after_seq": 3}, headers={"accept": "application/x-ndjson"}
    )
    lines = response.content.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [4, 5]
    assert (
        verify_chain(lines, ledger=LEDGER, from_seq=4, first_prev=five[2]["hash"])
        == five[-1]["hash"]
    )


def test_ndjson_of_an_empty_ledger_is_empty(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.get(EVENTS, headers={"accept": "application/x-ndjson"})
    assert response.status_code == 200
    assert response.content == b""


def test_ndjson_of_an_unknown_ledger_is_not_found(client: TestClient) -> None:
    response = client.get("/v1/ledgers/nowhere/events", headers={"accept": "application/x-ndjson"})
    assert_problem(response, 404)


def test_one_record_is_served_as_its_canonical_bytes(
    client: TestClient, five: list[dict[str, Any]]
) -> None:
    for receipt in five:
        body = record_at(client, receipt["seq"])
        assert sha256(body) == receipt["hash"]
        assert bytes(rfc8785.dumps(json.loads(body))) == body


@pytest.mark.parametrize("seq", [6, 1000, 2**53 - 1])
def test_a_record_beyond_the_head_is_not_found(
    client: TestClient, five: list[dict[str, Any]], seq: int
) -> None:
    assert_problem(client.get(f"{EVENTS}/{seq}"), 404)


@pytest.mark.parametrize("seq", ["0", "-1", "abc", "1.5", str(2**53)])
def test_a_seq_that_is_not_a_record_number_is_refused(
    client: TestClient, five: list[dict[str, Any]], seq: str
) -> None:
    assert_problem(client.get(f"{EVENTS}/{seq}"), 422, field="seq")


@pytest.mark.parametrize(
    "path", ["/events", "/events/1", "/head"], ids=["events", "one event", "head"]
)
def test_reading_an_unknown_ledger_is_not_found(client: TestClient, path: str) -> None:
    assert_problem(client.get(f"/v1/ledgers/nowhere{path}"), 404)


def test_the_head_of_an_empty_ledger_is_size_zero_and_zeros(client: TestClient) -> None:
    create_ledger(client, LEDGER)
    response = client.get(f"/v1/ledgers/{LEDGER}/head")
    assert response.status_code == 200
    assert response.json() == {"size": 0, "head_hash": ZEROS}


def test_the_head_is_the_size_and_the_hash_of_the_last_record(
    client: TestClient, five: list[dict[str, Any]]
) -> None:
    assert head(client) == {"size": 5, "head_hash": five[-1]["hash"]}
    assert head(client)["head_hash"] == sha256(record_at(client, 5))
    assert re.fullmatch(r"[0-9a-f]{64}", head(client)["head_hash"])
