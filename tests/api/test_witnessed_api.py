"""GET /checkpoint/witnessed and /witnesses (docs/witnesses.md): the quorum note
from stored cosignatures, why there is none, and access to private ledgers.

The cosignatures here are stored directly, signed by witness keys the test
holds; tests/e2e/test_witnessed.py has real witnesses produce them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.access import Scope
from ledger.api.app import create_app
from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.cosignature import Witness, require_quorum
from ledger.store.cosignatures import CosignatureRow, CosignatureStore
from tests.api.conftest import assert_problem
from tests.conftest import ADMIN_NAME, position, settings_for

W1, W2 = Witness.generate("witness.test/w1"), Witness.generate("witness.test/w2")
# Nothing listens on port 9 (discard) here: the collector's submissions fail at once.
WITNESSES = [{"url": "http://127.0.0.1:9", "key": w.verifier.to_string()} for w in (W1, W2)]


def make_client(database_url: str, data_dir: Path, **overrides: object) -> TestClient:
    return TestClient(
        create_app(settings_for(database_url, data_dir, **overrides)),
        raise_server_exceptions=False,
    )


def admin(client: TestClient) -> dict[str, str]:
    token, _ = client.app.state.tokens.create(ADMIN_NAME, (Scope("admin"),))  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def witnessed_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """Two witnesses, a quorum of one; ledger "talks" with checkpoints of sizes 2 and 3."""
    with make_client(database_url, tmp_path, witnesses=WITNESSES, witness_quorum=1) as client:
        client.headers.update(admin(client))
        client.post("/v1/ledgers", json={"name": "talks"}).raise_for_status()
        client.post("/v1/ledgers/talks/events", json=[position(), position()]).raise_for_status()
        client.post("/v1/ledgers/talks/events", json=position()).raise_for_status()
        yield client


def cosign(client: TestClient, witness: Witness, size: int) -> None:
    note = client.get("/v1/ledgers/talks/checkpoint", params={"size": size}).text
    body = SignedCheckpoint.from_text(note).checkpoint.body()
    store: CosignatureStore = client.app.state.cosignatures  # type: ignore[attr-defined]
    store.add(
        "talks",
        CosignatureRow(
            tree_size=size,
            witness=witness.verifier.to_string(),
            signed_at=1_800_000_000,
            line=witness.cosign(body, 1_800_000_000).to_line(),
            received_at="2026-12-07T07:00:00.000000Z",
        ),
    )


def test_the_witnessed_note_is_the_newest_with_the_quorum(witnessed_client: TestClient) -> None:
    client = witnessed_client
    problem = assert_problem(client.get("/v1/ledgers/talks/checkpoint/witnessed"), 404)
    assert "from 1 of its 2 witnesses" in problem["detail"]
    cosign(client, W1, 2)
    cosign(client, W2, 2)
    cosign(client, W2, 3)
    response = client.get("/v1/ledgers/talks/checkpoint/witnessed")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (response.headers["Ledger-Tree-Size"], response.headers["Ledger-Head-Size"]) == (
        "3",
        "3",
    )
    note = SignedCheckpoint.from_text(response.text)
    assert response.text.startswith(client.get("/v1/ledgers/talks/checkpoint").text)
    signed = require_quorum(note.checkpoint.body(), note.signatures, [W1.verifier, W2.verifier], 1)
    assert [c.name for c in signed] == ["witness.test/w2"]
    state = client.get("/v1/ledgers/talks/witnesses").json()
    assert (state["head"], state["quorum"], state["witnessed_size"]) == (3, 1, 3)
    w1, w2 = state["witnesses"]
    assert (w1["name"], w1["tree_size"], w1["lag"]) == ("witness.test/w1", 2, 1)
    assert (w2["tree_size"], w2["lag"], w2["timestamp"]) == (3, 0, 1_800_000_000)
    assert w2["signed_at"] == "2027-01-15T08:00:00.000000Z"


def test_without_witnesses_there_is_no_witnessed_note(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": "talks"}).raise_for_status()
    problem = assert_problem(client.get("/v1/ledgers/talks/checkpoint/witnessed"), 404)
    assert "LEDGER_WITNESSES is empty" in problem["detail"]
    state = client.get("/v1/ledgers/talks/witnesses").json()
    assert state == {
        "ledger": "talks",
        "head": 0,
        "quorum": 0,
        "witnessed_size": None,
        "witnesses": [],
    }


def test_a_private_ledger_s_witnessing_needs_a_reader(database_url: str, tmp_path: Path) -> None:
    with make_client(database_url, tmp_path, witnesses=WITNESSES) as client:
        headers = admin(client)
        body = {"name": "sealed", "public_read": False}
        client.post("/v1/ledgers", json=body, headers=headers).raise_for_status()
        for path in ("checkpoint/witnessed", "witnesses"):
            assert_problem(client.get(f"/v1/ledgers/sealed/{path}"), 401)
            assert client.get("/v1/ledgers/sealed/witnesses", headers=headers).status_code == 200


def test_witnesses_at_the_same_size_are_offered_one_proof_read_once_a_round(
    witnessed_client: TestClient,
) -> None:
    collector = witnessed_client.app.state.collector  # type: ignore[attr-defined]
    service = witnessed_client.app.state.service  # type: ignore[attr-defined]
    reads: list[tuple[str, int, int]] = []

    def prove(ledger: str, old: int, new: int) -> list[bytes]:
        reads.append((ledger, old, new))
        return list(service.consistency(ledger, size1=old, size2=new).proof)

    collector._prove = prove

    async def round_of(witnesses: int) -> list[list[bytes]]:
        collector._proofs = {}  # as each round of the collector starts
        return await asyncio.gather(*(collector._proof("talks", 2, 3) for _ in range(witnesses)))

    proofs = asyncio.run(round_of(3))
    assert reads == [("talks", 2, 3)]
    assert proofs[0] == proofs[1] == proofs[2] == prove("talks", 2, 3)
    asyncio.run(round_of(2))  # the next round reads again: sizes have moved on by then
    assert reads.count(("talks", 2, 3)) == 3
