"""HTTP contract of ``/v1/ledgers``, the health probes and the OpenAPI document.

Every test runs on SQLite and, with LEDGER_TEST_POSTGRES_URL set, PostgreSQL.
A refused request answers RFC 9457 ``application/problem+json`` and changes
nothing: the list of ledgers (names, sizes, head hashes) stays the same. No
request in this module may answer 500.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.core.times import RECORDED_AT_PATTERN
from ledger.intake import EventSchemas
from tests.api.conftest import ANY, PROBLEM, assert_problem
from tests.conftest import position

ZEROS = "0" * 64
FIELDS = {"name", "title", "description", "created_at", "size", "head_hash", "public_read"}


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def existing(client: TestClient) -> list[dict[str, Any]]:
    """Two ledgers, one of them holding a record; the listing."""
    for name in ("alpha", "beta"):
        assert client.post("/v1/ledgers", json={"name": name}).status_code == 201
    assert client.post("/v1/ledgers/beta/events", json=position()).status_code == 201
    return listing(client)


def listing(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/v1/ledgers")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def refused(
    client: TestClient, method: str, url: str, *, status: int, field: Any = ANY, **kwargs: Any
) -> dict[str, Any]:
    """Send a request that must be refused, and check no ledger changed."""
    before = listing(client)
    problem = assert_problem(client.request(method, url, **kwargs), status, field)
    assert listing(client) == before
    return problem


# -- creating ------------------------------------------------------------------


def test_a_new_ledger_is_created_empty(client: TestClient) -> None:
    response = client.post("/v1/ledgers", json={"name": "us-ua-minerals-2025"})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    ledger = response.json()
    assert set(ledger) == FIELDS
    assert ledger["public_read"] is True
    assert ledger["title"] is None and ledger["description"] is None
    assert ledger["name"] == "us-ua-minerals-2025"
    assert ledger["size"] == 0
    assert ledger["head_hash"] == ZEROS
    assert RECORDED_AT_PATTERN.match(ledger["created_at"])
    assert client.get("/v1/ledgers/us-ua-minerals-2025").json() == ledger


@pytest.mark.parametrize(
    "name",
    ["a", "0", "123", "a" * 63, "a-", "0-0", "us-ua-minerals-2025", "a--b"],
)
def test_every_name_matching_the_pattern_is_accepted(client: TestClient, name: str) -> None:
    response = client.post("/v1/ledgers", json={"name": name})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name


def test_a_name_already_taken_is_a_conflict(
    client: TestClient, existing: list[dict[str, Any]]
) -> None:
    problem = refused(client, "POST", "/v1/ledgers", json={"name": "beta"}, status=409)
    assert problem["type"] == "/problems/ledger-exists"


BAD_NAMES: list[tuple[str, Any]] = [
    ("capital letter", "Bad"),
    ("leading hyphen", "-x"),
    ("64 characters", "a" * 64),
    ("empty", ""),
    ("space", "a b"),
    ("underscore", "a_b"),
    ("non-ASCII letter", "é"),
    ("trailing newline", "abc\n"),
    ("leading space", " abc"),
    ("a number", 123),
    ("a float", 1.5),
    ("null", None),
    ("true", True),
    ("a list", ["alpha"]),
    ("an object", {"name": "alpha"}),
]


@pytest.mark.parametrize("name", [name for _, name in BAD_NAMES], ids=[why for why, _ in BAD_NAMES])
def test_a_bad_name_is_refused_naming_the_name_field(
    client: TestClient, existing: list[dict[str, Any]], name: Any
) -> None:
    refused(client, "POST", "/v1/ledgers", json={"name": name}, status=422, field="name")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "gamma", "size": 0}, "size"),
        (["gamma"], "(root)"),
        ("gamma", "(root)"),
        (7, "(root)"),
    ],
    ids=["name missing", "unknown member", "an array", "a string", "a number"],
)
def test_a_body_that_is_not_a_name_object_is_refused(
    client: TestClient, existing: list[dict[str, Any]], body: Any, field: str
) -> None:
    refused(client, "POST", "/v1/ledgers", json=body, status=422, field=field)


def test_a_ledger_carries_the_title_and_description_it_was_created_with(
    client: TestClient,
) -> None:
    body = {
        "name": "minerals",
        "title": "US–Ukraine minerals deal, 2025",  # noqa: RUF001,
        "description": "Who demanded what, and when,\nas the reports told it.",
    }
    response = client.post("/v1/ledgers", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["title"] == body["title"]
    assert created["description"] == body["description"]
    assert client.get("/v1/ledgers/minerals").json() == created
    assert listing(client) == [created]


TOO_LONG_TITLE = "t" * 201
TOO_LONG_DESCRIPTION = "d" * 2001


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": 7}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": " padded"}, "title"),
        ({"title": "two\nlines"}, "title"),
        ({"title": "bell\u0007"}, "title"),
        ({"title": TOO_LONG_TITLE}, "title"),
        ({"description": False}, "description"),
        ({"description": ""}, "description"),
        ({"description": "nul\u0000"}, "description"),
        ({"description": TOO_LONG_DESCRIPTION}, "description"),
        ({"title": "ok", "description": {"a": 1}}, "description"),
    ],
    ids=[
        "title a number",
        "title a list",
        "title empty",
        "title blank",
        "title padded",
        "title with a newline",
        "title with a control character",
        "title of 201 characters",
        "description false",
        "description empty",
        "description with NUL",
        "description of 2001 characters",
        "description an object",
    ],
)
def test_a_bad_title_or_description_is_refused_naming_it(
    client: TestClient, existing: list[dict[str, Any]], body: dict[str, Any], field: str
) -> None:
    refused(client, "POST", "/v1/ledgers", json={"name": "gamma", **body}, status=422, field=field)
    assert client.get("/v1/ledgers/gamma").status_code == 404


def test_null_title_and_description_mean_none(client: TestClient) -> None:
    body = {"name": "gamma", "title": None, "description": None}
    created = client.post("/v1/ledgers", json=body).json()
    assert created["title"] is None and created["description"] is None


def test_the_longest_title_and_description_are_accepted(client: TestClient) -> None:
    body = {"name": "gamma", "title": "t" * 200, "description": "d" * 2000}
    created = client.post("/v1/ledgers", json=body).json()
    assert (created["title"], created["description"]) == (body["title"], body["description"])


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b'{"name":"gamma","name":"delta"}', "application/json", 422),
        (b"name=gamma", "application/json", 400),
        (b'{"name":"gamma"', "application/json", 400),
        (b'{"name":"gamma"}', "text/plain", 415),
        (b'{"name":"gamma"}', None, 415),
        (b'{"name":"gamma"}', "application/json; charset=latin-1", 415),
        (b'{"name":"gamma"}' + b" " * (1024 * 1024), "application/json", 413),
    ],
    ids=[
        "name twice",
        "not JSON",
        "truncated JSON",
        "text/plain",
        "no content type",
        "latin-1",
        "over one mebibyte",
    ],
)
def test_a_malformed_create_request_is_refused(
    client: TestClient,
    existing: list[dict[str, Any]],
    raw: bytes,
    content_type: str | None,
    status: int,
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    refused(client, "POST", "/v1/ledgers", content=raw, headers=headers, status=status)


# -- listing and describing ------------------------------------------------------


def test_an_empty_server_lists_no_ledgers(client: TestClient) -> None:
    response = client.get("/v1/ledgers")
    assert response.status_code == 200
    assert response.json() == {"items": []}


def test_the_listing_is_sorted_by_name_and_shows_sizes_and_heads(
    client: TestClient, existing: list[dict[str, Any]]
) -> None:
    assert client.post("/v1/ledgers", json={"name": "aardvark"}).status_code == 201
    items = listing(client)
    assert [item["name"] for item in items] == ["aardvark", "alpha", "beta"]
    by_name = {item["name"]: item for item in items}
    assert by_name["alpha"]["size"] == 0
    assert by_name["alpha"]["head_hash"] == ZEROS
    beta_head = client.get("/v1/ledgers/beta/head").json()
    assert by_name["beta"]["size"] == beta_head["size"] == 1
    assert by_name["beta"]["head_hash"] == beta_head["head_hash"]
    for item in items:
        assert set(item) == FIELDS


def test_a_ledger_is_described_as_it_is_listed(
    client: TestClient, existing: list[dict[str, Any]]
) -> None:
    for item in existing:
        response = client.get(f"/v1/ledgers/{item['name']}")
        assert response.status_code == 200
        assert response.json() == item


def test_appending_moves_the_size_and_head_of_only_that_ledger(
    client: TestClient, existing: list[dict[str, Any]]
) -> None:
    receipt = client.post("/v1/ledgers/alpha/events", json=position()).json()
    alpha = client.get("/v1/ledgers/alpha").json()
    assert alpha["size"] == 1
    assert alpha["head_hash"] == receipt["hash"]
    assert client.get("/v1/ledgers/beta").json() == existing[1]


@pytest.mark.parametrize("name", ["nowhere", "Bad", "a" * 64])
def test_an_unknown_ledger_is_not_found(
    client: TestClient, existing: list[dict[str, Any]], name: str
) -> None:
    refused(client, "GET", f"/v1/ledgers/{name}", status=404)


def test_an_unknown_path_is_a_problem_too(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/ledgers/beta"),
        ("PUT", "/v1/ledgers/beta"),
        ("PATCH", "/v1/ledgers/beta"),
        ("DELETE", "/v1/ledgers"),
        ("POST", "/v1/ledgers/beta/head"),
    ],
)
def test_ledgers_cannot_be_deleted_or_replaced(
    client: TestClient, existing: list[dict[str, Any]], method: str, path: str
) -> None:
    response = client.request(method, path, json={"name": "beta"})
    assert_problem(response, 405)
    assert response.headers["allow"]
    assert listing(client) == existing


# -- health ----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "status"), [("/healthz", "ok"), ("/readyz", "ready")])
def test_the_health_probes_answer(client: TestClient, path: str, status: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": status}


# -- OpenAPI ---------------------------------------------------------------------

PATHS = {
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/v1/ledgers": {"get", "post"},
    "/v1/ledgers/{ledger}": {"get"},
    "/v1/ledgers/{ledger}/events": {"get", "post"},
    "/v1/ledgers/{ledger}/events/{seq}": {"get"},
    "/v1/ledgers/{ledger}/head": {"get"},
}
EVENT_TYPES = [
    "draft.presented",
    "party.registered",
    "position.stated",
    "position.withdrawn",
    "record.corrected",
    "record.retracted",
    "topic.registered",
]


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_openapi_lists_every_path_and_method(openapi: dict[str, Any]) -> None:
    for path, methods in PATHS.items():
        assert path in openapi["paths"], path
        assert methods <= set(openapi["paths"][path]), path


def test_openapi_documents_the_append_body_with_the_event_schemas(
    openapi: dict[str, Any],
) -> None:
    body = openapi["paths"]["/v1/ledgers/{ledger}/events"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "#/components/schemas/Event" in json.dumps(schema)
    assert {"$ref": "#/components/schemas/Event"} in schema["oneOf"]
    components = openapi["components"]["schemas"]
    assert "Event.position.stated" in components
    # One choice per schema file the server validates against, the built-in types among them.
    served = EventSchemas.bundled().types
    assert set(EVENT_TYPES) <= set(served)
    refs = {choice["$ref"] for choice in components["Event"]["oneOf"]}
    assert refs == {f"#/components/schemas/Event.{t}" for t in served}
    for event_type in served:
        assert f"Event.{event_type}" in components


def test_every_ref_in_openapi_resolves(openapi: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(openapi):
        assert ref.startswith("#/"), ref
        target: Any = openapi
        for part in ref[2:].split("/"):
            assert part in target, ref
            target = target[part]


def test_openapi_documents_errors_as_problem_details(openapi: dict[str, Any]) -> None:
    append = openapi["paths"]["/v1/ledgers/{ledger}/events"]["post"]["responses"]
    for status in ("400", "404", "409", "413", "415", "422"):
        assert PROBLEM in append[status]["content"], status
    assert "Problem" in openapi["components"]["schemas"]
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
