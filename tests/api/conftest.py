"""Shared by every HTTP test: no response may be a 5xx, and how a problem looks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"
ANY: Any = object()


@pytest.fixture(autouse=True)
def never_500(request: pytest.FixtureRequest) -> None:
    """Fail the test on the first 5xx response, whatever the test asserts after."""
    if "client" not in request.fixturenames:
        return
    client: TestClient = request.getfixturevalue("client")

    def check(response: httpx.Response) -> None:
        sent = response.request
        assert response.status_code < 500, f"{sent.method} {sent.url} -> 5xx"

    client.event_hooks["response"].append(check)


def assert_problem(response: httpx.Response, status: int, field: Any = ANY) -> dict[str, Any]:
    """An RFC 9457 problem document with ``status`` (and ``field``, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("/problems/")
    assert problem["title"]
    assert problem["detail"]
    if field is not ANY:
        assert problem.get("field") == field, problem
    return problem
