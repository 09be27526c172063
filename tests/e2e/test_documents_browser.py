"""Archived documents in a real Chromium (docs/documents.md): hostile HTML,
served by a real server, neither runs script in the ledger's origin nor
reaches anywhere, whether the reader downloads it or views it sandboxed."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import TIMEOUT_MS, launched_chromium, watched_page
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.slow

LEDGER = "archive"


class Canary:
    """An HTTP server on a free port that counts the requests it gets."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, *_: Any) -> None:
                pass

        self.hits = hits
        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def hostile(server: str, canary: int) -> bytes:
    """A page that tries everything an archived page must not do."""
    event = (
        '{"type":"position.stated","occurred_at":"2025-02-24","party":"US","topic":"t",'
        '"data":{"stance":"demand","summary":"forged by an archived page"}}'
    )
    return f"""<!doctype html>
<html><head><title>archived</title>
<link rel="stylesheet" href="http://127.0.0.1:{canary}/style.css">
<script>
  document.title = "script ran";
  try {{ localStorage.setItem("pwned", "1"); }} catch (e) {{}}
  document.cookie = "pwned=1; path=/";
  fetch("{server}/v1/ledgers/{LEDGER}/events", {{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body: '{event}'}});
  fetch("http://127.0.0.1:{canary}/fetch");
</script></head>
<body><p id="said">What the outlet reported on the day.</p>
<img src="http://127.0.0.1:{canary}/pixel.png" onerror="document.title='handler ran'">
<iframe src="http://127.0.0.1:{canary}/frame"></iframe>
<form id="f" action="{server}/v1/ledgers" method="post"><input name="name" value="evil"></form>
<script>document.getElementById("f").submit();</script>
</body></html>""".encode()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Canary, str]]:
    data_dir: Path = tmp_path_factory.mktemp("documents")
    process = ServerProcess(database_url=f"sqlite:///{data_dir / 'ledger.db'}", data_dir=data_dir)
    canary = Canary()
    try:
        assert httpx.post(f"{process.url}/v1/ledgers", json={"name": LEDGER}).status_code == 201
        page = hostile(process.url, canary.port)
        uploaded = httpx.post(
            f"{process.url}/v1/ledgers/{LEDGER}/documents",
            content=page,
            headers={"Content-Type": "text/html; charset=utf-8"},
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["sha256"] == hashlib.sha256(page).hexdigest()
        yield process, canary, uploaded.headers["Location"]
    finally:
        canary.stop()
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


def nothing_happened(process: ServerProcess, canary: Canary, page: Any) -> None:
    """No record was appended, no ledger created, no request left the page,
    and nothing was stored in the ledger's origin."""
    records = httpx.get(f"{process.url}/v1/ledgers/{LEDGER}/events").json()["items"]
    assert records == []
    names = [item["name"] for item in httpx.get(f"{process.url}/v1/ledgers").json()["items"]]
    assert "evil" not in names
    assert canary.hits == []
    page.goto(f"{process.url}/healthz")
    assert page.evaluate("localStorage.getItem('pwned')") is None
    assert "pwned" not in page.evaluate("document.cookie")


def test_hostile_html_viewed_in_the_sandbox_shows_but_does_nothing(
    browser: Any, setup: tuple[ServerProcess, Canary, str]
) -> None:
    process, canary, location = setup
    with watched_page(browser) as page:
        page.goto(f"{process.url}{location}?view=sandboxed", timeout=TIMEOUT_MS)
        said = page.locator("#said")
        said.wait_for(timeout=TIMEOUT_MS)
        assert said.inner_text() == "What the outlet reported on the day."
        page.wait_for_timeout(1000)  # time for anything the page might still try
        assert page.title() == "archived"
        nothing_happened(process, canary, page)


def test_hostile_html_by_default_is_a_download_and_never_rendered(
    browser: Any, setup: tuple[ServerProcess, Canary, str]
) -> None:
    process, canary, location = setup
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        # Chromium aborts a navigation that turns into a download.
        with (
            page.expect_download(timeout=TIMEOUT_MS) as started,
            pytest.raises(Exception, match="Download is starting"),
        ):
            page.goto(f"{process.url}{location}", timeout=TIMEOUT_MS)
        download = started.value
        sha = location.rsplit("/", 1)[1]
        assert download.suggested_filename == f"{sha}.html"
        assert hashlib.sha256(Path(download.path()).read_bytes()).hexdigest() == sha
        page.wait_for_timeout(500)
        nothing_happened(process, canary, page)
    finally:
        context.close()


def test_html_sent_as_plain_text_is_shown_as_text(
    browser: Any, setup: tuple[ServerProcess, Canary, str]
) -> None:
    process, canary, _ = setup
    # Other bytes than the HTML document's: the same bytes are held under one type.
    text = hostile(process.url, canary.port) + b"\n<!-- sent as text/plain -->\n"
    uploaded = httpx.post(
        f"{process.url}/v1/ledgers/{LEDGER}/documents",
        content=text,
        headers={"Content-Type": "text/plain"},
    )
    assert uploaded.status_code == 201, uploaded.text
    with watched_page(browser) as page:
        page.goto(f"{process.url}{uploaded.headers['Location']}", timeout=TIMEOUT_MS)
        assert "<script>" in page.locator("body").inner_text()
        page.wait_for_timeout(500)
        nothing_happened(process, canary, page)


def test_the_timeline_and_the_record_page_link_the_archived_copy(
    browser: Any, setup: tuple[ServerProcess, Canary, str]
) -> None:
    process, _, location = setup
    sha = location.rsplit("/", 1)[1]
    source = {"name": "The New York Times", "kind": "media", "document": sha}
    event = {
        "type": "position.stated",
        "occurred_at": "2025-02-24",
        "party": "US",
        "topic": "revenue-share",
        "data": {"stance": "demand", "summary": "Half of the revenue into a joint fund."},
        "source": source,
    }
    ledger = "archived-timeline"
    assert httpx.post(f"{process.url}/v1/ledgers", json={"name": ledger}).status_code == 201
    page_bytes = b"<!doctype html><p>The report as archived.</p>"
    held = httpx.post(
        f"{process.url}/v1/ledgers/{ledger}/documents",
        content=page_bytes,
        headers={"Content-Type": "text/html"},
    ).json()
    event["source"] = {**source, "document": held["sha256"]}
    posted = httpx.post(f"{process.url}/v1/ledgers/{ledger}/events", json=event)
    assert posted.status_code == 201, posted.text
    archived = f"/v1/ledgers/{ledger}/documents/{held['sha256']}?view=sandboxed"
    with watched_page(browser) as page:
        page.goto(f"{process.url}/ledgers/{ledger}", timeout=TIMEOUT_MS)
        page.locator("#verify-badge[data-state=ok]").wait_for(timeout=TIMEOUT_MS)
        cell = page.locator('#grid td[data-party="US"][data-topic="revenue-share"]')
        assert cell.locator("a.archived").get_attribute("href") == archived
        rows = page.locator("ol.events a.archived")
        assert rows.count() >= 1 and rows.first.get_attribute("href") == archived
        page.goto(f"{process.url}/ledgers/{ledger}/records/1", timeout=TIMEOUT_MS)
        row = page.locator("table.fields tr", has_text="archived source")
        assert held["sha256"] in row.inner_text()
        assert f"{len(page_bytes)} bytes" in row.inner_text()
        row.locator("a.archived").click()
        page.locator("p").first.wait_for(timeout=TIMEOUT_MS)
        assert page.locator("p").first.inner_text() == "The report as archived."
