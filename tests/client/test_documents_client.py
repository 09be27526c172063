"""Source documents from the client library (docs/documents.md), against a
real server on each backend: uploads checked against the bytes sent, events
citing a local file in one step, and ``ledger-verify server --documents``."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import httpx
import pytest

from ledger_client import AsyncClient, Client, VerificationError
from ledger_client.verify import main as verify_main
from tests.client.proxy import Reply, proxy
from tests.conftest import position
from tests.servers import ServerProcess

PAGE = b"<!doctype html><p>Kyiv wants security guarantees first.</p>"


def test_an_upload_answers_the_hash_of_the_bytes_sent(server: ServerProcess, ledger: str) -> None:
    with Client(server.url) as client:
        held = client.upload_document(ledger, PAGE, "text/html")
        assert held == {
            "sha256": hashlib.sha256(PAGE).hexdigest(),
            "size": len(PAGE),
            "media_type": "text/html",
        }
        assert client.upload_document(ledger, PAGE, "text/html") == held
        with pytest.raises(ValueError, match="media_type"):
            client.upload_document(ledger, PAGE)


def test_an_event_citing_a_local_file_uploads_it_and_cites_its_hash(
    server: ServerProcess, ledger: str, log_key: str, tmp_path: Path
) -> None:
    article = tmp_path / "article.html"
    article.write_bytes(PAGE)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 64)
    source = {"name": "Kyiv Independent", "kind": "media", "document_path": str(article)}
    event = position(source=source)
    with Client(server.url, trusted_keys=[log_key]) as client:
        receipt = client.append(ledger, event, verify=True)
        other = {**source, "document_path": str(scan)}
        many = client.append_many(ledger, [position(party="UA", source=other)] * 2)
        record = client.record(ledger, receipt.seq)
    assert event["source"] == source  # the caller's event is left as it was
    assert record.source == {
        "name": "Kyiv Independent",
        "kind": "media",
        "document": hashlib.sha256(PAGE).hexdigest(),
    }
    assert [r.seq for r in many] == [2, 3]
    served = httpx.get(f"{server.url}/v1/ledgers/{ledger}/documents/{record.source['document']}")
    assert served.content == PAGE
    with Client(server.url) as client, pytest.raises(ValueError, match="media type"):
        client.append(ledger, position(source={**source, "document_path": str(tmp_path)}))


def test_the_async_client_does_the_same(server: ServerProcess, ledger: str, tmp_path: Path) -> None:
    article = tmp_path / "article.txt"
    article.write_bytes(b"plain words")

    async def run() -> dict[str, object]:
        async with AsyncClient(server.url) as client:
            source = {"name": "AP", "kind": "media", "document_path": str(article)}
            receipt = await client.append(ledger, position(source=source))
            return dict((await client.record(ledger, receipt.seq)).source or {})

    assert asyncio.run(run())["document"] == hashlib.sha256(b"plain words").hexdigest()


def test_a_server_that_names_the_upload_wrongly_is_caught(
    server: ServerProcess, ledger: str
) -> None:
    def lie(method: str, path: str, response: httpx.Response) -> Reply | None:
        if method == "POST" and path.endswith("/documents"):
            body = {"sha256": "0" * 64, "size": len(PAGE), "media_type": "text/html"}
            headers = {"Content-Type": "application/json"}
            return Reply(response.status_code, json.dumps(body).encode(), headers)
        return None

    with proxy(server.url) as network, Client(network.url) as client:
        network.alter = lie
        with pytest.raises(VerificationError, match="did not hold the document"):
            client.upload_document(ledger, PAGE, "text/html")


def test_ledger_verify_server_fetches_and_rehashes_the_cited_documents(
    server: ServerProcess, ledger: str, log_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(server.url) as client:
        sha = client.upload_document(ledger, PAGE, "text/html")["sha256"]
        client.append(ledger, position(source={"name": "AP", "kind": "media", "document": sha}))
    argv = ["server", server.url, "--ledger", ledger, "--key", log_key, "--json"]
    assert verify_main(argv) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert any("1 cited, NOT fetched" in check for check in checks), checks
    assert verify_main([*argv, "--documents"]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert any("fetched, each one's bytes hash to its name" in check for check in checks)
