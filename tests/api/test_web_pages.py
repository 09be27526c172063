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
    for name in ("timeline.js", "verify.js", "livestream.js", "timeline.css"):
        assert client.get(f"/static/{name}").status_code == 200


# -- what a reader sees first ------------------------------------------------------


def test_the_page_shows_the_title_and_description_given_at_creation(client: TestClient) -> None:
    body = {
        "name": "talks",
        "title": f"Minerals talks {SCRIPT}",
        "description": "Who asked for what.\nSecond paragraph.",
    }
    client.post("/v1/ledgers", json=body).raise_for_status()
    page = client.get("/ledgers/talks").text
    heading = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert heading and html.escape(body["title"], quote=False) in heading.group(1)
    assert "<script>alert" not in page
    assert "<p>Who asked for what.</p>" in page and "<p>Second paragraph.</p>" in page
    assert re.search(r"<title>Minerals talks &lt;script&gt;", page)
    assert "Minerals talks &lt;script&gt;" in client.get("/").text
    # Without a title the name stands in.
    client.post("/v1/ledgers", json={"name": "bare"}).raise_for_status()
    assert "<h1>bare</h1>" in client.get("/ledgers/bare").text


# -- transaction time by record number ---------------------------------------------


def _slider(page: str) -> dict[str, str]:
    match = re.search(r'<input type="range" id="known_seq"([^>]*)>', page)
    assert match, "no record slider"
    return dict(re.findall(r'([a-z-]+)="([^"]*)"', match.group(1)))


def test_known_at_a_record_number_shows_what_the_ledger_knew_then(
    client: TestClient, demo: None
) -> None:
    # At record 9 the ledger knew only Trump's claim about Kyiv, not Kyiv's refusal.
    page = client.get("/ledgers/demo", params={"known_at": "9"}).text
    slider = _slider(page)
    assert (slider["min"], slider["max"], slider["value"], slider["name"]) == (
        "0",
        "23",
        "9",
        "known_seq",
    )
    assert "record 9 of 23" in page
    assert "Claim by US" in _cell(page, "UA", "revenue-share")
    assert "No position" in _cell(page, "UA", "signing")
    # The slider's own parameter, as a form without JavaScript sends it.
    later = client.get("/ledgers/demo", params={"known_seq": "11"}).text
    assert _slider(later)["value"] == "11"
    assert "st-reject" in _cell(later, "UA", "signing")
    # A date, when given, decides; the slider then shows the record it meant.
    dated = client.get("/ledgers/demo", params={"known_seq": "11", "known_at": "2999-01-01"}).text
    assert _slider(dated)["value"] == "23"
    latest = client.get("/ledgers/demo").text
    assert _slider(latest)["value"] == "23" and "record 23 of 23" in latest


@pytest.mark.parametrize("value", ["24", "-1", "x", "9.5"])
def test_a_record_number_beyond_the_ledger_is_refused_naming_it(
    client: TestClient, demo: None, value: str
) -> None:
    response = client.get("/ledgers/demo", params={"known_seq": value})
    assert response.status_code == 422 and "known_seq" in response.text


def _explanation(page: str) -> str:
    match = re.search(r'<p id="grid-empty"[^>]*>(.*?)</p>', page, re.S)
    assert match, "no explanation of the empty result"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(1)))


def test_an_empty_result_says_why(client: TestClient, demo: None) -> None:
    recorded = client.get("/v1/ledgers/demo/events/1").json()["recorded_at"][:10]
    before = _explanation(client.get("/ledgers/demo", params={"known_at": "2025-02-24"}).text)
    assert "Nothing had been recorded by the end of 2025-02-24" in before
    assert f"first record was recorded on {recorded}" in before
    assert "as of" in before.lower() and "record number" in before
    registrations = _explanation(client.get("/ledgers/demo", params={"known_at": "8"}).text)
    assert "only registered parties and topics" in registrations
    assert "first position is record 9" in registrations
    early = _explanation(client.get("/ledgers/demo", params={"as_of": "2025-02-05"}).text)
    assert "by 2025-02-05" in early and "earliest dates from 2025-02-10" in early
    assert 'id="grid-empty"' not in client.get("/ledgers/demo").text


def test_an_empty_ledger_says_it_holds_nothing_yet(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "fresh"}).raise_for_status()
    assert "holds no records yet" in _explanation(client.get("/ledgers/fresh").text)


# -- corrections and terms ---------------------------------------------------------


def test_a_cell_whose_record_was_corrected_is_marked(client: TestClient, demo: None) -> None:
    cell = _cell(client.get("/ledgers/demo").text, "US", "revenue-share")
    assert 'class="fix-note"' in cell and "Corrected by" in cell
    assert 'href="/ledgers/demo/records/23"' in cell
    # As the ledger knew it before the correction, nothing marks the cell.
    before = _cell(
        client.get("/ledgers/demo", params={"known_at": "22"}).text, "US", "revenue-share"
    )
    assert "Corrected by" not in before and "CNN" in before
    assert "Corrected by" not in _cell(client.get("/ledgers/demo").text, "UA", "signing")


def test_history_rows_show_what_changed_in_the_terms(client: TestClient, demo: None) -> None:
    page = client.get("/ledgers/demo").text
    figure = re.search(
        r'<figure class="timeline" data-topic="revenue-share">(.*?)</figure>', page, re.S
    )
    assert figure
    rows = re.findall(r"<li>(.*?)</li>", figure.group(1), re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row)) for row in rows]
    hardened = next(row for row in text if "record #17" in row)
    assert re.search(r"demand → (! )?demand", hardened), hardened
    assert "share_percent: 50 → 100" in hardened
    assert "of: added revenues from natural resources" in hardened
    first = next(row for row in text if "record #10" in row)
    assert "share_percent: 50" in first


# -- the latest records ------------------------------------------------------------


def test_latest_records_are_numbered_by_seq_and_summarised(client: TestClient, demo: None) -> None:
    page = client.get("/ledgers/demo").text
    live = re.search(r'<ul id="live" class="live"[^>]*>(.*?)</ul>', page, re.S)
    assert live, "the latest records are one list numbered by seq only"
    rows = re.findall(r'<li data-seq="(\d+)">(.*?)</li>', live.group(1), re.S)
    assert [int(seq) for seq, _ in rows] == list(range(23, 13, -1))
    text = {int(seq): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row)) for seq, row in rows}
    assert all(text[seq].startswith(f"record #{seq} ") for seq in text)
    assert "Corrects record #17" in text[23] and "New York Times" in text[23]
    assert "United States on Security guarantees: oppose" in text[22]
    assert "firmly resists" in text[22]
