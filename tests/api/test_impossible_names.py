"""A ledger, party or topic name that no ledger, party or topic can have is
answered without asking the database: PostgreSQL text cannot hold a NUL byte,
so such a name once reached it and came back as a 500. Runs on every backend."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ledger.api.routes import positions
from tests.api.conftest import assert_problem
from tests.conftest import SCHEMAS, position

NUL = "%00"


@pytest.fixture
def talks(client: TestClient) -> None:
    assert client.post("/v1/ledgers", json={"name": "talks"}).status_code == 201
    assert client.post("/v1/ledgers/talks/events", json=position()).status_code == 201


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/ledgers/{NUL}",
        f"/v1/ledgers/{NUL}/head",
        f"/v1/ledgers/{NUL}/events",
        f"/v1/ledgers/{NUL}/snapshot",
        f"/v1/ledgers/a{NUL}b/checkpoint",
        f"/v1/ledgers/{NUL}/export",
        "/v1/ledgers/%ED%A0%80/head",
    ],
)
def test_a_ledger_name_no_ledger_can_have_is_not_found(
    client: TestClient, talks: None, path: str
) -> None:
    assert_problem(client.get(path), 404)


def test_appending_to_a_ledger_name_no_ledger_can_have_is_not_found(
    client: TestClient, talks: None
) -> None:
    assert_problem(client.post(f"/v1/ledgers/{NUL}/events", json=position()), 404)


@pytest.mark.parametrize("path", [f"/ledgers/{NUL}", f"/ledgers/{NUL}/records/1"])
def test_a_page_of_a_ledger_name_no_ledger_can_have_is_not_found(
    client: TestClient, talks: None, path: str
) -> None:
    response = client.get(path, headers={"accept": "text/html"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/v1/ledgers/talks/parties/{NUL}", "party"),
        (f"/v1/ledgers/talks/parties/U{NUL}S", "party"),
        (f"/v1/ledgers/talks/history?party={NUL}", "party"),
        (f"/v1/ledgers/talks/history?topic=a{NUL}", "topic"),
    ],
)
def test_a_party_or_topic_code_that_cannot_be_one_is_refused(
    client: TestClient, talks: None, path: str, field: str
) -> None:
    assert_problem(client.get(path), 422, field=field)


def test_party_and_topic_codes_still_select(client: TestClient, talks: None) -> None:
    assert client.get("/v1/ledgers/talks/parties/US").json()["positions"]
    history = client.get("/v1/ledgers/talks/history?party=US&topic=security-guarantees")
    assert history.json()["items"]


def test_the_codes_refused_are_those_of_the_event_schemas() -> None:
    common = SCHEMAS.documents["common.json"]["$defs"]
    assert common["party"]["pattern"] == positions.PARTY_CODE
    assert common["topic"]["pattern"] == positions.TOPIC_CODE
