"""HTTP surface of export bundles (format §4): a streamed tar, or a problem first."""

from __future__ import annotations

import io
import tarfile

import pytest
from fastapi.testclient import TestClient

from ledger.core import checkpoint as notes
from ledger.core.bundle import MEMBERS, Manifest
from ledger.core.signing import VerifierKey
from tests.api.conftest import assert_problem
from tests.conftest import position

LEDGER = "talks"
TAR = "application/x-tar"


@pytest.fixture
def filled(client: TestClient) -> list[bytes]:
    client.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    for batch in ([position()] * 3, [position(stance="demand")] * 4):
        assert client.post(f"/v1/ledgers/{LEDGER}/events", json=batch).status_code == 201
    response = client.get(
        f"/v1/ledgers/{LEDGER}/events", headers={"Accept": "application/x-ndjson"}
    )
    return response.content.splitlines()


def members(raw: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
        out = {}
        for info in archive.getmembers():
            handle = archive.extractfile(info)
            assert handle is not None
            out[info.name] = handle.read()
    return out


def test_the_export_streams_a_tar_attachment(client: TestClient, filled: list[bytes]) -> None:
    with client.stream("GET", f"/v1/ledgers/{LEDGER}/export") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == TAR
        assert response.headers["content-disposition"] == 'attachment; filename="talks-1-7.tar"'
        # Streamed: the length is not known before the body is sent.
        assert "content-length" not in response.headers
        raw = response.read()
    bundle = members(raw)
    assert list(bundle) == list(MEMBERS)
    assert bundle["records.jsonl"] == b"".join(line + b"\n" for line in filled)
    manifest = Manifest.from_bytes(bundle["manifest.json"])
    head = client.get(f"/v1/ledgers/{LEDGER}/head").json()
    assert (manifest.to_seq, manifest.head_hash) == (head["size"], head["head_hash"])
    (key,) = client.get("/v1/keys").json()["items"]
    verifier = VerifierKey.from_string(key["verifier_key"])
    assert manifest.key_id == verifier.key_id_hex
    verifier.verify(bundle["manifest.sig"], bundle["manifest.json"])
    assert bundle["checkpoint"] == client.get(f"/v1/ledgers/{LEDGER}/checkpoint?size=7").content
    notes.verify(bundle["checkpoint"], [verifier])


def test_a_sub_range_is_named_in_the_filename(client: TestClient, filled: list[bytes]) -> None:
    response = client.get(f"/v1/ledgers/{LEDGER}/export", params={"from_seq": 2, "to_seq": 5})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="talks-2-5.tar"'
    bundle = members(response.content)
    assert bundle["records.jsonl"] == b"".join(line + b"\n" for line in filled[1:5])
    manifest = Manifest.from_bytes(bundle["manifest.json"])
    assert (manifest.from_seq, manifest.to_seq, manifest.count) == (2, 5, 4)
    assert manifest.head_inclusion_proof


def test_an_unknown_ledger_is_404(client: TestClient) -> None:
    assert_problem(client.get("/v1/ledgers/absent/export"), 404)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from_seq=0", "from_seq"),
        ("from_seq=-1", "from_seq"),
        ("from_seq=abc", "from_seq"),
        ("from_seq=1.5", "from_seq"),
        ("to_seq=0", "to_seq"),
        ("to_seq=x", "to_seq"),
        ("to_seq=8", "to_seq"),  # beyond the head
        ("to_seq=99999999999999999999", "to_seq"),
        ("from_seq=5&to_seq=4", "from_seq"),
        ("from_seq=8", "from_seq"),  # after the head: past the default to_seq
    ],
)
def test_bad_ranges_are_422_naming_the_parameter(
    client: TestClient, filled: list[bytes], query: str, field: str
) -> None:
    response = client.get(f"/v1/ledgers/{LEDGER}/export?{query}")
    assert_problem(response, 422, field=field)


def test_an_empty_ledger_has_nothing_to_export(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "empty"}).raise_for_status()
    assert_problem(client.get("/v1/ledgers/empty/export"), 422, field="to_seq")


def test_the_openapi_documents_the_tar_response(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/ledgers/{ledger}/export"]["get"]
    assert TAR in operation["responses"]["200"]["content"]
    assert {"404", "422"} <= operation["responses"].keys()
    assert {p["name"] for p in operation["parameters"]} >= {"ledger", "from_seq", "to_seq"}
