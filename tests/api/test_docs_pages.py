"""``/docs`` and ``/redoc`` load nothing from another origin: their scripts
and styles are this server's (the rendering itself: tests/e2e/test_api_docs.py)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import assert_problem

_URL = re.compile(r'(?:src|href|spec-url)="([^"]*)"')


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_documentation_pages_load_only_their_own_assets(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert "script-src 'self';" in response.headers["content-security-policy"]
    urls = _URL.findall(response.text)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "<script>" not in response.text  # no inline script: the CSP would refuse it
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"cdn.redoc.ly" not in asset.content


def test_an_unknown_documentation_asset_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/docs/assets/nothing.js"), 404)
    assert_problem(client.get("/docs/assets/..%2Fdocspages.py"), 404)
