"""GET /v1/ledgers/{ledger}/checkpoint/timestamp, served from a real authority's replies.

The app runs its timestamping task (LEDGER_TSA_INTERVAL of 50 ms) against a
local ``openssl ts`` authority (tests/tsa.py); each test waits, with a
deadline, for the reply the task stores.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.access import parse_scopes
from ledger.api.app import create_app
from ledger.core import checkpoint as notes
from ledger.core.timestamps import REPLY_MEDIA_TYPE, TsaTrust, verify_reply
from tests.api.conftest import assert_problem
from tests.conftest import position, settings_for
from tests.tsa import LocalTsa, make_authority

pytestmark = pytest.mark.slow

PATH = "/v1/ledgers/{}/checkpoint/timestamp"


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    with LocalTsa(make_authority(tmp_path_factory.mktemp("tsa"))) as running:
        yield running


@pytest.fixture
def client(migrated_url: str, tmp_path: Path, tsa: LocalTsa) -> Iterator[TestClient]:
    settings = settings_for(
        migrated_url,
        tmp_path,
        tsa_url=tsa.url,
        tsa_certs=tsa.authority.chain,
        tsa_interval=0.05,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(client: TestClient, *scopes: str) -> dict[str, str]:
    token, _ = client.app.state.tokens.create(
        "-".join(scopes).replace(":", "."), parse_scopes(scopes)
    )  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def create(client: TestClient, admin: dict[str, str], ledger: str, *, public: bool) -> None:
    body = {"name": ledger, "public_read": public}
    assert client.post("/v1/ledgers", json=body, headers=admin).status_code == 201
    events = [position(), position(party="UA")]
    posted = client.post(f"/v1/ledgers/{ledger}/events", json=events, headers=admin)
    assert posted.status_code == 201, posted.text


def stored(client: TestClient, ledger: str, headers: dict[str, str]) -> httpx.Response:
    """The timestamp once the background task has stored one (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        response = client.get(PATH.format(ledger), headers=headers)
        if response.status_code != 404 or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def test_the_newest_timestamp_is_served_with_its_size_and_time(
    client: TestClient, tsa: LocalTsa
) -> None:
    admin = bearer(client, "admin")
    create(client, admin, "pub", public=True)
    response = stored(client, "pub", {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == REPLY_MEDIA_TYPE
    assert response.headers["ledger-tree-size"] == "2"
    assert response.headers["ledger-timestamp-authority"] == tsa.url
    note = client.get("/v1/ledgers/pub/checkpoint?size=2").text
    body = notes.SignedCheckpoint.from_text(note).checkpoint.body()
    trust = TsaTrust.from_pem(tsa.authority.chain.read_bytes())
    attestation = verify_reply(response.content, body, trust)
    assert response.headers["ledger-attested-at"] == attestation.attested_at
    assert client.get(PATH.format("pub") + "?size=2").content == response.content
    assert client.get(PATH.format("pub") + "?at_most=9").content == response.content


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_statuses_for_what_is_not_there_or_not_a_size(client: TestClient) -> None:
    admin = bearer(client, "admin")
    create(client, admin, "pub", public=True)
    assert stored(client, "pub", {}).status_code == 200
    assert "no ledger" in assert_problem(client.get(PATH.format("nope")), 404)["detail"]
    assert (
        "tree size 1" in assert_problem(client.get(PATH.format("pub") + "?size=1"), 404)["detail"]
    )
    assert_problem(client.get(PATH.format("pub") + "?at_most=1"), 404)
    assert client.post("/v1/ledgers", json={"name": "empty"}, headers=admin).status_code == 201
    assert "no timestamped" in assert_problem(client.get(PATH.format("empty")), 404)["detail"]
    for bad in ("0", "-1", "x", "9007199254740992"):
        assert_problem(client.get(PATH.format("pub") + f"?size={bad}"), 422, field="size")
    assert_problem(client.get(PATH.format("pub") + "?at_most=0"), 422, field="at_most")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_private_ledger_s_timestamp_needs_a_token_that_may_read_it(client: TestClient) -> None:
    admin = bearer(client, "admin")
    create(client, admin, "priv", public=False)
    assert stored(client, "priv", admin).status_code == 200
    assert_problem(client.get(PATH.format("priv")), 401)
    other = client.get(PATH.format("priv"), headers=bearer(client, "read:other"))
    assert "may not read ledger 'priv'" in assert_problem(other, 403)["detail"]
    assert client.get(PATH.format("priv"), headers=bearer(client, "read:priv")).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_openapi_documents_the_route_its_media_type_and_headers(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][PATH.format("{ledger}")]["get"]
    ok = operation["responses"]["200"]
    assert list(ok["content"]) == [REPLY_MEDIA_TYPE]
    assert {"Ledger-Tree-Size", "Ledger-Attested-At"} <= set(ok["headers"])
    assert {"404", "422"} <= set(operation["responses"])
    assert [p["name"] for p in operation["parameters"]] == ["ledger", "size", "at_most"]
