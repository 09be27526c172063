"""Source documents over HTTP (docs/documents.md): uploaded under their hash,
cited by records, served exactly and inertly, private where the ledger is."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.access import parse_scopes
from ledger.api.app import create_app
from ledger.store.documents import PART_BYTES
from tests.api.conftest import assert_problem
from tests.conftest import ADMIN_NAME, position, settings_for

LEDGER = "archive"
LIMIT = 3 * PART_BYTES
HTML = b"<!doctype html><title>Minerals deal</title><p>Half of the revenue.</p>"
DOCS = f"/v1/ledgers/{LEDGER}/documents"


@pytest.fixture
def client(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(migrated_url, tmp_path, max_document_bytes=LIMIT)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        token = bearer(test_client, ADMIN_NAME, "admin")
        test_client.headers.update(token)
        for name, public in ((LEDGER, True), ("priv", False)):
            created = test_client.post("/v1/ledgers", json={"name": name, "public_read": public})
            assert created.status_code == 201, created.text
        yield test_client


def bearer(client: TestClient, name: str, scope: str) -> dict[str, str]:
    token, _ = client.app.state.tokens.create(name, parse_scopes([scope]))  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def upload(
    client: TestClient, data: bytes, media_type: str = "text/html", ledger: str = LEDGER
) -> dict[str, object]:
    answer = client.post(
        f"/v1/ledgers/{ledger}/documents", content=data, headers={"Content-Type": media_type}
    )
    assert answer.status_code == 201, answer.text
    held: dict[str, object] = answer.json()
    return held


def test_an_upload_is_held_under_its_hash_and_served_byte_for_byte(client: TestClient) -> None:
    sha = hashlib.sha256(HTML).hexdigest()
    answer = client.post(DOCS, content=HTML, headers={"Content-Type": "text/html; charset=UTF-8"})
    assert answer.status_code == 201
    assert answer.json() == {
        "sha256": sha,
        "size": len(HTML),
        "media_type": "text/html; charset=utf-8",
    }
    assert answer.headers["Location"] == f"{DOCS}/{sha}"
    again = client.post(DOCS, content=HTML, headers={"Content-Type": "text/html; charset=utf-8"})
    assert again.status_code == 200
    assert again.json() == answer.json()
    served = client.get(answer.headers["Location"])
    assert served.status_code == 200
    assert served.content == HTML
    assert served.headers["Content-Type"] == "text/html; charset=utf-8"
    assert served.headers["Content-Length"] == str(len(HTML))
    assert served.headers["ETag"] == f'"{sha}"'
    assert client.get(DOCS).json() == {"items": [answer.json()]}


def test_a_document_of_several_parts_round_trips(client: TestClient) -> None:
    data = b"%PDF-1.7\n" + os.urandom(2 * PART_BYTES)
    held = upload(client, data, "application/pdf")
    served = client.get(f"{DOCS}/{held['sha256']}")
    assert served.content == data
    assert served.headers["Content-Type"] == "application/pdf"
    assert "Content-Security-Policy" not in served.headers


def test_html_is_served_as_an_inert_download_unless_viewed_in_the_sandbox(
    client: TestClient,
) -> None:
    sha = upload(client, HTML)["sha256"]
    served = client.get(f"{DOCS}/{sha}")
    assert served.headers["Content-Disposition"] == f'attachment; filename="{sha}.html"'
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"].startswith("sandbox;")
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    viewed = client.get(f"{DOCS}/{sha}", params={"view": "sandboxed"})
    assert viewed.headers["Content-Disposition"].startswith("inline;")
    assert viewed.headers["Content-Security-Policy"] == served.headers["Content-Security-Policy"]
    assert_problem(client.get(f"{DOCS}/{sha}", params={"view": "raw"}), 422, field="view")


def test_a_reader_s_current_copy_gets_304(client: TestClient) -> None:
    sha = upload(client, HTML)["sha256"]
    for tag in (f'"{sha}"', f'W/"{sha}"', f'"other", "{sha}"', "*"):
        cached = client.get(f"{DOCS}/{sha}", headers={"If-None-Match": tag})
        assert cached.status_code == 304, tag
        assert cached.content == b""
        assert cached.headers["ETag"] == f'"{sha}"'
    assert client.get(f"{DOCS}/{sha}", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    ("media_type", "data", "status"),
    [
        ("application/json", b"{}", 415),
        ("image/svg+xml", b"<svg onload='alert(1)'/>", 415),
        ("", b"x", 415),
        ("image/png", b"<html>not a png</html>", 422),
        ("application/pdf", b"<script>", 422),
        ("image/jpeg", b"GIF89a", 422),
    ],
)
def test_types_not_held_get_415_and_bytes_not_of_their_type_422(
    client: TestClient, media_type: str, data: bytes, status: int
) -> None:
    answer = client.post(DOCS, content=data, headers={"Content-Type": media_type})
    assert_problem(answer, status, field="Content-Type")
    assert client.get(DOCS).json() == {"items": []}


def test_a_document_over_the_limit_gets_413_before_its_body_is_read(client: TestClient) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(4):
            yield b"a" * PART_BYTES

    # Declared too large: refused on the header, before the body is read.
    declared = client.post(
        DOCS,
        content=body(),
        headers={"Content-Type": "text/plain", "Content-Length": str(LIMIT + 1)},
    )
    assert_problem(declared, 413)
    # Not declared (chunked): refused once the bytes read pass the limit.
    chunked = client.post(DOCS, content=body(), headers={"Content-Type": "text/plain"})
    assert_problem(chunked, 413)
    at_limit = client.post(DOCS, content=b"a" * LIMIT, headers={"Content-Type": "text/plain"})
    assert at_limit.status_code == 201
    assert [item["size"] for item in client.get(DOCS).json()["items"]] == [LIMIT]


def test_an_empty_document_and_the_same_bytes_as_another_type_are_refused(
    client: TestClient,
) -> None:
    assert_problem(client.post(DOCS, content=b"", headers={"Content-Type": "text/plain"}), 422)
    upload(client, HTML)
    clash = client.post(DOCS, content=HTML, headers={"Content-Type": "text/plain"})
    assert "as text/html" in assert_problem(clash, 409)["detail"]


def test_unknown_or_malformed_hashes(client: TestClient) -> None:
    assert_problem(client.get(f"{DOCS}/{'0' * 64}"), 404)
    assert_problem(client.get(f"{DOCS}/{'A' * 64}"), 422, field="sha256")
    assert_problem(client.get(f"{DOCS}/abc"), 422, field="sha256")
    assert_problem(client.get(f"/v1/ledgers/nope/documents/{'0' * 64}"), 404)


def test_an_event_cites_a_held_document_and_the_record_keeps_the_hash(
    client: TestClient,
) -> None:
    sha = upload(client, HTML)["sha256"]
    event = position(source={"name": "The New York Times", "kind": "media", "document": sha})
    posted = client.post(f"/v1/ledgers/{LEDGER}/events", json=event)
    assert posted.status_code == 201, posted.text
    record = client.get(posted.headers["Location"]).json()
    assert record["source"]["document"] == sha


def test_an_event_citing_a_document_the_ledger_does_not_hold_is_refused(
    client: TestClient,
) -> None:
    sha = str(upload(client, HTML)["sha256"])
    elsewhere = str(upload(client, b"other bytes", "text/plain", ledger="priv")["sha256"])
    events = f"/v1/ledgers/{LEDGER}/events"
    cite = {"name": "NYT", "kind": "media", "document": elsewhere}
    assert_problem(client.post(events, json=position(source=cite)), 422, field="source.document")
    batch = [position(source={**cite, "document": sha}), position(source=cite)]
    assert_problem(client.post(events, json=batch), 422, field="[1].source.document")
    malformed = position(source={**cite, "document": sha.upper()})
    assert_problem(client.post(events, json=malformed), 422, field="source.document")
    assert client.get(events).json()["items"] == []
    posted = client.post(events, json=position(source={**cite, "document": sha}))
    assert posted.status_code == 201
    fix = {
        "type": "record.corrected",
        "occurred_at": "2025-02-25",
        "data": {"target_seq": 1, "reason": "wrong copy", "changes": {"source": cite}},
    }
    assert_problem(client.post(events, json=fix), 422, field="data.changes.source.document")


def test_uploading_needs_the_append_scope_and_private_documents_stay_private(
    client: TestClient,
) -> None:
    sha = upload(client, HTML, ledger="priv")["sha256"]
    path = f"/v1/ledgers/priv/documents/{sha}"
    reader = bearer(client, "reader", "read")
    desk = bearer(client, "desk", "append:UA")
    headers = {"Content-Type": "text/plain"}
    assert_problem(client.post(DOCS, content=b"x", headers={**headers, **reader}), 403)
    assert client.post(DOCS, content=b"x", headers={**headers, **desk}).status_code == 201
    client.headers.pop("Authorization")
    assert_problem(client.get(path), 401)
    assert_problem(client.get("/v1/ledgers/priv/documents"), 401)
    assert_problem(client.post(DOCS, content=b"y", headers=headers), 401)
    served = client.get(path, headers=reader)
    assert served.status_code == 200
    assert served.headers["Cache-Control"].startswith("private,")


def test_openapi_documents_the_upload_and_the_read(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    upload = paths["/v1/ledgers/{ledger}/documents"]["post"]
    assert set(upload["requestBody"]["content"]) == {
        "text/html",
        "text/plain",
        "application/pdf",
        "image/png",
        "image/jpeg",
        "message/rfc822",
    }
    assert {"200", "201", "413", "415"} <= set(upload["responses"])
    read = paths["/v1/ledgers/{ledger}/documents/{sha256}"]["get"]
    assert {"200", "304", "404"} <= set(read["responses"])
