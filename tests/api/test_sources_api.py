"""HTTP surface of the sources view (docs/sources.md): who reported what."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from ledger.core.records import Record
from ledger.core.sources import fold, sources_list
from tests.api.conftest import assert_problem
from tests.core.test_positions import DEMO
from tests.core.test_sources import CNN, correct, retract, stated

LEDGER = "demo"


@pytest.fixture
def demo(client: TestClient) -> list[Record]:
    client.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    events = [json.loads(line) for line in DEMO.read_text().splitlines()]
    assert client.post(f"/v1/ledgers/{LEDGER}/events", json=events).status_code == 201
    response = client.get(
        f"/v1/ledgers/{LEDGER}/events", headers={"Accept": "application/x-ndjson"}
    )
    return [Record.from_dict(json.loads(line)) for line in response.content.splitlines()]


def test_the_list_is_the_fold_of_the_demo(client: TestClient, demo: list[Record]) -> None:
    response = client.get(f"/v1/ledgers/{LEDGER}/sources")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    listed = response.json()
    assert listed == sources_list(LEDGER, len(demo), fold(demo))
    names = [s["name"] for s in listed["sources"]]
    assert names == sorted(names) and "The New York Times" in names
    for source in listed["sources"]:
        assert source["records"] >= 1 and source["first_seq"] <= source["last_seq"]


def test_the_detail_lists_each_citation_with_its_correction(
    client: TestClient, demo: list[Record]
) -> None:
    (fix,) = [r for r in demo if r.type == "record.corrected"]
    target = fix.data["target_seq"]
    nyt = client.get(f"/v1/ledgers/{LEDGER}/sources/{quote('The New York Times')}").json()
    assert nyt["name"] == "The New York Times" and nyt["tree_size"] == len(demo)
    assert nyt["records"] == len(nyt["citations"])
    (corrected,) = [c for c in nyt["citations"] if c["seq"] == target]
    assert corrected["corrected_by"] == [fix.seq] and "retracted_by" not in corrected
    # The correction took the citation away from CNN.
    cnn = client.get(f"/v1/ledgers/{LEDGER}/sources/CNN")
    if cnn.status_code == 200:
        assert target not in [c["seq"] for c in cnn.json()["citations"]]


NAMES = ["Le Monde / AFP", "Офіс Президента України", "Kyiv Independent, 24 Feb?#%"]


@pytest.fixture
def named(client: TestClient) -> dict[str, Any]:
    client.post("/v1/ledgers", json={"name": "named"}).raise_for_status()
    events = [stated({"name": name, "kind": "media"}) for name in NAMES]
    posted = client.post(
        "/v1/ledgers/named/events", json=[*events, retract(1), correct(2, {"party": "UA"})]
    )
    assert posted.status_code == 201, posted.text
    return {}


@pytest.mark.parametrize("name", NAMES)
def test_names_with_spaces_slashes_and_non_ascii_are_url_encoded(
    client: TestClient, named: dict[str, Any], name: str
) -> None:
    response = client.get(f"/v1/ledgers/named/sources/{quote(name, safe='')}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["name"] == name
    (citation,) = detail["citations"]
    assert detail["records"] == (0 if "retracted_by" in citation else 1)


def test_a_retracted_citation_is_flagged_and_not_counted(
    client: TestClient, named: dict[str, Any]
) -> None:
    listed = {s["name"]: s for s in client.get("/v1/ledgers/named/sources").json()["sources"]}
    assert sorted(listed) == sorted(NAMES)
    assert listed[NAMES[0]]["records"] == 0 and listed[NAMES[0]]["parties"] == []
    detail = client.get(f"/v1/ledgers/named/sources/{quote(NAMES[0], safe='')}").json()
    assert detail["citations"][0]["retracted_by"] == 4
    second = client.get(f"/v1/ledgers/named/sources/{quote(NAMES[1], safe='')}").json()
    assert second["citations"][0]["corrected_by"] == [5]


@pytest.mark.parametrize("name", ["Reuters", "CNN%00", "%2F", "x" * 300])
def test_an_unknown_source_is_a_404_problem_naming_it(
    client: TestClient, named: dict[str, Any], name: str
) -> None:
    problem = assert_problem(client.get(f"/v1/ledgers/named/sources/{name}"), 404)
    if name == "Reuters":
        assert "'Reuters'" in problem["detail"]


def test_an_unknown_ledger_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/ledgers/nowhere/sources"), 404)
    assert_problem(client.get("/v1/ledgers/nowhere/sources/CNN"), 404)


def test_a_ledger_without_sources_lists_none(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "empty"}).raise_for_status()
    assert client.get("/v1/ledgers/empty/sources").json() == {
        "ledger": "empty",
        "tree_size": 0,
        "sources": [],
    }


def test_a_private_ledger_needs_a_read_token(client: TestClient) -> None:
    body = {"name": "closed", "public_read": False}
    client.post("/v1/ledgers", json=body).raise_for_status()
    client.post("/v1/ledgers/closed/events", json=stated(CNN)).raise_for_status()
    assert client.get("/v1/ledgers/closed/sources/CNN").status_code == 200
    del client.headers["Authorization"]
    assert_problem(client.get("/v1/ledgers/closed/sources"), 401)
    assert_problem(client.get("/v1/ledgers/closed/sources/CNN"), 401)


def test_the_routes_and_their_models_are_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert "/v1/ledgers/{ledger}/sources" in paths
    detail = paths["/v1/ledgers/{ledger}/sources/{name}"]["get"]
    assert "404" in detail["responses"]
    schemas = document["components"]["schemas"]
    assert {"SourceList", "SourceDetail", "SourceSummary", "CitationOut"} <= schemas.keys()
