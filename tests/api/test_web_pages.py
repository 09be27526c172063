"""The timeline pages as plain HTML: rendered on the server, escaped, access-checked."""

from __future__ import annotations

import hashlib
import html
import json
import re

import pytest
from fastapi.testclient import TestClient

from ledger.web.views import safe_url
from tests.conftest import position
from tests.core.test_positions import DEMO

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def demo(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "demo"}).raise_for_status()
    events = [json.loads(line) for line in DEMO.read_text().splitlines()]
    assert client.post("/v1/ledgers/demo/events", json=events).status_code == 201


@pytest.fixture
def hostile(client: TestClient) -> None:
    """A ledger whose every free-text member tries to inject markup."""
    client.post("/v1/ledgers", json={"name": "hostile"}).raise_for_status()
    events = [
        {
            "type": "party.registered",
            "party": "EVIL",
            "occurred_at": "2025-02-01",
            "data": {"name": f"Evil {SCRIPT}"},
        },
        {
            "type": "topic.registered",
            "topic": "xss",
            "occurred_at": "2025-02-01",
            "data": {"title": f'Topic "><img src=x onerror=alert(2)> {SCRIPT}'},
        },
        position(
            party="EVIL",
            topic="xss",
            data={"stance": "oppose", "summary": f"summary {SCRIPT}"},
            source={"name": f"src {SCRIPT}", "kind": "media", "url": "https://e.test/?a=<b>"},
        ),
        position(
            party="EVIL",
            topic="xss",
            occurred_at="2025-02-20",
            data={"stance": "support", "summary": f"claim {SCRIPT}", "claimed_by": "US"},
        ),
    ]
    assert client.post("/v1/ledgers/hostile/events", json=events).status_code == 201


def _cell(page: str, party: str, topic: str) -> str:
    match = re.search(
        rf'<td class="[^"]*" data-party="{party}" data-topic="{topic}"[^>]*>(.*?)</td>',
        page,
        re.S,
    )
    assert match, f"no cell for {party}/{topic}"
    return match.group(1)


def test_the_index_lists_ledgers(client: TestClient, demo: None) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<a href="/ledgers/demo">demo</a>' in response.text


def test_the_grid_is_rendered_on_the_server(client: TestClient, demo: None) -> None:
    page = client.get("/ledgers/demo", params={"as_of": "2025-02-24"}).text
    cell = _cell(page, "US", "security-guarantees")
    assert 'class="stance st-oppose"' in cell and "oppose" in cell
    assert 'href="/ledgers/demo/records/22"' in cell
    # The claim the US makes about Ukraine's revenue-share position has its own marker.
    claim = _cell(page, "UA", "revenue-share")
    assert "Claim by US" in claim and "No position" in claim
    # An earlier day shows the earlier position: Ukraine still refused to sign.
    earlier = client.get("/ledgers/demo", params={"as_of": "2025-02-20"}).text
    assert "st-reject" in _cell(earlier, "UA", "signing")
    assert "st-support" in _cell(page, "UA", "signing")


def test_pages_escape_everything(client: TestClient, hostile: None) -> None:
    for path in ("/ledgers/hostile", "/ledgers/hostile/records/3", "/ledgers/hostile/records/1"):
        page = client.get(path).text
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
    page = client.get("/ledgers/hostile").text
    assert html.escape(f"Evil {SCRIPT}", quote=False) in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in _cell(page, "EVIL", "xss")
    # The embedded data for the script cannot close its <script> element either.
    data = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.S)
    assert data and "<" not in data.group(1)
    assert json.loads(data.group(1))["snapshot"]["state"]["EVIL"]["xss"]["stance"] == "oppose"
    assert "script-src 'self'" in client.get("/ledgers/hostile").headers["content-security-policy"]


def test_only_http_urls_become_links() -> None:
    assert safe_url("https://example.org/a") == "https://example.org/a"
    assert safe_url("HTTP://example.org") == "HTTP://example.org"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url(" https://x") is None
    assert safe_url(None) is None


def test_the_record_page_shows_every_field_and_its_corrections(
    client: TestClient, demo: None
) -> None:
    page = client.get("/ledgers/demo/records/17").text
    record = client.get("/v1/ledgers/demo/events/17").content
    assert hashlib.sha256(record).hexdigest() in page
    for member in ("ledger", "seq", "id", "type", "party", "topic", "occurred_at"):
        assert f'<th scope="row">{member}</th>' in page
    for member in ("recorded_at", "data", "source", "actor", "prev", "hash"):
        assert f'<th scope="row">{member}</th>' in page
    assert json.loads(record)["prev"] in page
    assert 'href="/ledgers/demo/records/23"' in page and "corrected" in page
    fix = client.get("/ledgers/demo/records/23").text
    assert 'This record fixes <a href="/ledgers/demo/records/17">' in fix


def test_unknown_ledgers_and_records_are_404_pages(client: TestClient, demo: None) -> None:
    assert client.get("/ledgers/nope").status_code == 404
    response = client.get("/ledgers/demo/records/999")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    bad = client.get("/ledgers/demo", params={"as_of": "yesterday"})
    assert bad.status_code == 422 and "as_of" in bad.text


def test_private_ledgers_are_not_shown_to_anonymous_readers(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "secret", "public_read": False}).raise_for_status()
    client.post("/v1/ledgers/secret/events", json=position()).raise_for_status()
    assert "/ledgers/secret" in client.get("/").text
    del client.headers["Authorization"]
    anonymous = client.get("/")
    assert anonymous.status_code == 200 and "/ledgers/secret" not in anonymous.text
    page = client.get("/ledgers/secret")
    assert page.status_code == 401 and "not public" in page.text
    assert client.get("/ledgers/secret/records/1").status_code == 401


def test_web_pages_are_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(path == "/" or path.startswith("/ledgers") for path in paths)
    stream = paths["/v1/ledgers/{ledger}/events/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]


def test_static_files_are_served(client: TestClient) -> None:
    for name in ("timeline.js", "verify.js", "timeline.css"):
        assert client.get(f"/static/{name}").status_code == 200
