"""``/docs`` (Swagger UI) and ``/redoc`` render in a real headless Chromium
with every request that would leave the machine blocked: their scripts and
styles come from the server, under its Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.browser import ARTIFACTS, TIMEOUT_MS, launched_chromium
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("docs")
    process = ServerProcess(
        database_url=f"sqlite:///{data_dir / 'ledger.db'}",
        data_dir=data_dir,
        env={"LEDGER_AUTH": "tokens"},
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


class OfflinePage:
    """A page whose requests to any host but 127.0.0.1 are aborted and listed,
    and whose script errors and CSP violations are collected."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: (
                self.errors.append(message.text)
                if message.type == "error" or "Content Security Policy" in message.text
                else None
            ),
        )

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


@pytest.fixture
def offline(browser: Any) -> Iterator[OfflinePage]:
    page = OfflinePage(browser)
    try:
        yield page
    finally:
        page.context.close()


def _operations(server: ServerProcess) -> list[tuple[str, str, str]]:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    return [
        (method, path, operation.get("summary", ""))
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def test_swagger_ui_renders_every_operation_offline(
    server: ServerProcess, offline: OfflinePage
) -> None:
    response = offline.page.goto(f"{server.url}/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    operations = _operations(server)
    blocks = offline.page.locator(".opblock")
    blocks.nth(len(operations) - 1).wait_for(timeout=TIMEOUT_MS)
    assert blocks.count() == len(operations)
    stream = offline.page.locator(".opblock-summary-path", has_text="/events/stream")
    assert stream.first.is_visible()
    offline.page.screenshot(path=str(ARTIFACTS / "docs-offline.png"))
    assert offline.blocked == []
    assert offline.errors == []


def test_redoc_renders_offline(server: ServerProcess, offline: OfflinePage) -> None:
    response = offline.page.goto(f"{server.url}/redoc")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    summary = "Follow the ledger: server-sent events, one per appended record"
    assert any(s == summary for _m, _p, s in _operations(server))
    offline.page.locator("h2", has_text=summary).wait_for(timeout=TIMEOUT_MS)
    offline.page.screenshot(path=str(ARTIFACTS / "redoc-offline.png"))
    assert offline.blocked == []
    assert offline.errors == []
