"""The append lane: ``POST .../events`` skips FastAPI's per-request machinery,
and must answer exactly as the declared route would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ledger.access import Scope
from ledger.api.app import create_app
from tests.api.conftest import assert_problem
from tests.conftest import ADMIN_NAME, position, settings_for

EVENTS = "/v1/ledgers/talks/events"


def start(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        token, _ = client.app.state.tokens.create(ADMIN_NAME, (Scope("admin"),))  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.post("/v1/ledgers", json={"name": "talks"}).status_code == 201
        yield client


@pytest.fixture
def laned(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    yield from start(create_app(settings_for(database_url, tmp_path / "a")))


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[TestClient]:
    """The app with the lane taken out (the router serves appends), on its own database."""
    app = create_app(settings_for(f"sqlite:///{tmp_path}/routed.db", tmp_path / "b"))
    app.lane = None
    yield from start(app)


def comparable(response: Any) -> tuple[int, str, dict[str, Any] | list[Any]]:
    body = response.json()
    for item in body if isinstance(body, list) else [body]:
        for volatile in ("id", "hash", "prev", "recorded_at", "instance"):
            item.pop(volatile, None)
    return response.status_code, response.headers["content-type"], body


CASES: list[tuple[str, dict[str, Any]]] = [
    ("one event", {"json": position()}),
    ("a batch", {"json": [position(), position(party="UA")]}),
    ("expected_seq at the head", {"json": position(), "params": {"expected_seq": "0"}}),
    ("expected_seq off the head", {"json": position(), "params": {"expected_seq": "7"}}),
    ("expected_seq not a number", {"json": position(), "params": {"expected_seq": "x"}}),
    ("a bad event", {"json": {**position(), "party": 5}}),
    ("not JSON", {"content": b"{", "headers": {"Content-Type": "application/json"}}),
    ("no content type", {"content": b"{}", "headers": {"Content-Type": ""}}),
    ("a bad Idempotency-Key", {"json": position(), "headers": {"Idempotency-Key": " x"}}),
    ("no token", {"json": position(), "headers": {"Authorization": ""}}),
]


@pytest.mark.parametrize(("name", "request_args"), CASES, ids=[c[0] for c in CASES])
def test_the_lane_answers_as_the_router_does(
    laned: TestClient, routed: TestClient, name: str, request_args: dict[str, Any]
) -> None:
    assert comparable(laned.post(EVENTS, **request_args)) == comparable(
        routed.post(EVENTS, **request_args)
    )


def test_only_the_append_route_takes_the_lane(laned: TestClient) -> None:
    # Other methods and near-miss paths reach the router: 405 and 404 problems.
    assert_problem(laned.put(EVENTS, json=position()), 405)
    assert_problem(laned.post(EVENTS + "/1", json=position()), 405)
    slash = laned.post("/v1/ledgers/talks/events/", json=position(), follow_redirects=False)
    assert slash.status_code == 307
    assert_problem(laned.post("/v1/ledgers/nope/events", json=position()), 404)


def test_an_unexpected_failure_in_the_lane_is_a_problem_not_a_traceback(
    laned: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(laned.app.state.service, "prepare_append", broken)  # type: ignore[attr-defined]
    problem = assert_problem(laned.post(EVENTS, json=position()), 500)
    assert "bug" not in problem["detail"]


def test_openapi_documents_what_the_endpoint_reads(laned: TestClient) -> None:
    operation = laned.get("/openapi.json").json()["paths"]["/v1/ledgers/{ledger}/events"]["post"]
    params = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert params == {("path", "ledger"), ("query", "expected_seq"), ("header", "Idempotency-Key")}
    assert operation["requestBody"]["required"] is True
    assert {"201", "200", "401", "403", "409", "422"} <= set(operation["responses"])
