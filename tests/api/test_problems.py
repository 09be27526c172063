"""Every problem document, whoever answers it, is ``application/problem+json``
with ``X-Content-Type-Options: nosniff`` (as the HTML pages), and can always be
written, even when the request it repeats holds text with no UTF-8 form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from ledger.api.problems import internal_error_response, ledger_error_response, problem_response
from ledger.core import errors
from tests.api.conftest import PROBLEM
from tests.conftest import position

EVENTS = "/v1/ledgers/talks/events"
JSON = {"content-type": "application/json"}
# Over POOL_BODY_BYTES: parsed in the intake worker, refused by the server's own parse.
LARGE_INVALID = json.dumps([position() for _ in range(300)] + [{"type": 1}]).encode()

# (why, method, path, request keywords, status): each answered by a different handler.
REQUESTS: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("unknown route (router)", "GET", "/nowhere", {}, 404),
    ("unknown static file (mount)", "GET", "/static/nothing.css", {}, 404),
    ("method not allowed (router)", "DELETE", "/v1/ledgers", {}, 405),
    ("query out of range (FastAPI)", "GET", "/v1/ledgers/talks/events?limit=0", {}, 422),
    ("unknown ledger (LedgerError)", "GET", "/v1/ledgers/nowhere/head", {}, 404),
    ("invalid event (append lane)", "POST", EVENTS, {"json": {"type": 1}}, 422),
    ("not JSON (append lane)", "POST", EVENTS, {"content": b"{", "headers": JSON}, 400),
    ("not JSON media type", "POST", EVENTS, {"content": b"{}"}, 415),
    ("body too large", "POST", EVENTS, {"content": b" " * (1 << 21), "headers": JSON}, 413),
    ("large body (intake pool)", "POST", EVENTS, {"content": LARGE_INVALID, "headers": JSON}, 422),
    ("no token", "POST", EVENTS, {"json": position(), "headers": {"authorization": ""}}, 401),
    ("ledger exists (router)", "POST", "/v1/ledgers", {"json": {"name": "talks"}}, 409),
]


@pytest.mark.parametrize(
    ("method", "path", "options", "status"),
    [(m, p, o, s) for _, m, p, o, s in REQUESTS],
    ids=[why for why, *_ in REQUESTS],
)
def test_every_problem_carries_nosniff(
    client: TestClient, method: str, path: str, options: dict[str, Any], status: int
) -> None:
    assert client.post("/v1/ledgers", json={"name": "talks"}).status_code == 201
    response = client.request(method, path, **options)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-content-type-options"] == "nosniff"


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/x", "headers": [], "app": None})


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(internal_error_response(_request()), id="unexpected failure (500)"),
        pytest.param(
            ledger_error_response(_request(), errors.StorageUnavailable("down")), id="503"
        ),
        pytest.param(
            ledger_error_response(_request(), errors.ChainBroken("gap", seq=3)),
            id="verification failed (500)",
        ),
    ],
)
def test_server_errors_carry_nosniff(response: Any) -> None:
    assert response.status_code >= 500
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_lone_surrogate_in_a_problem_is_written_as_escaped_text() -> None:
    response = problem_response(
        422, slug="invalid-event", title="Invalid event", detail="\ud800: no", field="\ud800"
    )
    problem = json.loads(response.body)
    assert problem["detail"] == "\\ud800: no"
    assert problem["field"] == "\\ud800"
