"""HTTP surface of the verifiable log: checkpoints, proofs, keys (format §2-3)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from ledger.core import checkpoint as notes
from ledger.core.errors import VerificationError
from ledger.core.hashing import leaf_hash
from ledger.core.merkle import root_from_leaves, verify_consistency, verify_inclusion
from ledger.core.signing import VerifierKey
from tests.conftest import ORIGIN, position

LEDGER = "talks"


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.fixture
def filled(client: TestClient) -> list[bytes]:
    client.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    for batch in ([position()] * 3, [position(stance="demand")] * 4, [position(stance="offer")]):
        assert client.post(f"/v1/ledgers/{LEDGER}/events", json=batch).status_code == 201
    response = client.get(
        f"/v1/ledgers/{LEDGER}/events", headers={"Accept": "application/x-ndjson"}
    )
    return response.content.splitlines()


def verifier(client: TestClient) -> VerifierKey:
    (key,) = client.get("/v1/keys").json()["items"]
    return VerifierKey.from_string(key["verifier_key"])


def test_keys_list_the_verifier_key_computed_from_the_public_key(
    client: TestClient, tmp_path: Path
) -> None:
    (item,) = client.get("/v1/keys").json()["items"]
    private = serialization.load_pem_private_key(
        (tmp_path / "keys" / "signing-key.pem").read_bytes(), password=None
    )
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4].hex()
    encoded = base64.b64encode(b"\x01" + raw).decode()
    expected = f"{ORIGIN}+{key_id}+{encoded}"
    assert item["verifier_key"] == expected
    assert item["key_id"] == key_id
    assert item["status"] == "active" and item["not_after"] is None
    assert (tmp_path / "keys" / "signing-key.pem").stat().st_mode & 0o777 == 0o600


def test_receipts_name_their_leaf_and_tree_size(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    one = client.post(f"/v1/ledgers/{LEDGER}/events", json=position()).json()
    assert (one["leaf_index"], one["tree_size"]) == (0, 1)
    batch = client.post(f"/v1/ledgers/{LEDGER}/events", json=[position()] * 3).json()
    assert [(r["leaf_index"], r["tree_size"]) for r in batch] == [(1, 4), (2, 4), (3, 4)]


def test_the_latest_checkpoint_is_a_signed_note_of_the_head(
    client: TestClient, filled: list[bytes]
) -> None:
    response = client.get(f"/v1/ledgers/{LEDGER}/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    checkpoint = notes.verify(response.text, [verifier(client)]).checkpoint
    assert checkpoint.origin == f"{ORIGIN}/{LEDGER}"
    assert checkpoint.tree_size == 8
    assert checkpoint.root == root_from_leaves([leaf_hash(line) for line in filled])
    assert checkpoint.head_hash == client.get(f"/v1/ledgers/{LEDGER}/head").json()["head_hash"]


def test_a_checkpoint_of_any_size_up_to_the_head(client: TestClient, filled: list[bytes]) -> None:
    for size in range(0, 9):
        text = client.get(f"/v1/ledgers/{LEDGER}/checkpoint", params={"size": size}).text
        checkpoint = notes.verify(text, [verifier(client)]).checkpoint
        assert checkpoint.tree_size == size
        assert checkpoint.root == root_from_leaves([leaf_hash(x) for x in filled[:size]])
    too_big = client.get(f"/v1/ledgers/{LEDGER}/checkpoint", params={"size": 9})
    assert too_big.status_code == 404
    assert too_big.headers["content-type"] == "application/problem+json"


def test_inclusion_proofs_verify_against_the_checkpoint_root(
    client: TestClient, filled: list[bytes]
) -> None:
    for size in range(1, 9):
        for seq in range(1, size + 1):
            body = client.get(
                f"/v1/ledgers/{LEDGER}/proofs/inclusion", params={"seq": seq, "tree_size": size}
            ).json()
            assert (body["seq"], body["tree_size"], body["leaf_index"]) == (seq, size, seq - 1)
            verify_inclusion(
                seq - 1,
                size,
                leaf_hash(filled[seq - 1]),
                [b64d(h) for h in body["proof"]],
                b64d(body["root"]),
            )
    default = client.get(f"/v1/ledgers/{LEDGER}/proofs/inclusion", params={"seq": 2}).json()
    assert default["tree_size"] == 8


def test_consistency_proofs_link_every_pair_of_sizes(
    client: TestClient, filled: list[bytes]
) -> None:
    for size2 in range(1, 9):
        for size1 in range(1, size2 + 1):
            body = client.get(
                f"/v1/ledgers/{LEDGER}/proofs/consistency", params={"from": size1, "to": size2}
            ).json()
            assert (body["from"], body["to"]) == (size1, size2)
            verify_consistency(
                size1,
                size2,
                [b64d(h) for h in body["proof"]],
                b64d(body["root1"]),
                b64d(body["root2"]),
            )


def test_a_tampered_proof_or_root_is_rejected(client: TestClient, filled: list[bytes]) -> None:
    body = client.get(
        f"/v1/ledgers/{LEDGER}/proofs/inclusion", params={"seq": 3, "tree_size": 8}
    ).json()
    proof = [b64d(h) for h in body["proof"]]
    root = b64d(body["root"])
    tampered = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    with pytest.raises(VerificationError):
        verify_inclusion(2, 8, leaf_hash(filled[2]), tampered, root)
    with pytest.raises(VerificationError):
        verify_inclusion(2, 8, leaf_hash(filled[2]), proof, hashlib.sha256(root).digest())
    with pytest.raises(VerificationError):
        verify_inclusion(2, 8, leaf_hash(filled[3]), proof, root)


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("proofs/inclusion", {"seq": 9}, 404, None),
        ("proofs/inclusion", {"seq": 0}, 422, "seq"),
        ("proofs/inclusion", {"seq": 3, "tree_size": 2}, 422, "seq"),
        ("proofs/inclusion", {"seq": 3, "tree_size": 9}, 422, "tree_size"),
        ("proofs/inclusion", {}, 422, "seq"),
        ("proofs/inclusion", {"seq": "x"}, 422, "seq"),
        ("proofs/consistency", {"from": 0, "to": 3}, 422, "from"),
        ("proofs/consistency", {"from": 4, "to": 3}, 422, "from"),
        ("proofs/consistency", {"from": 1, "to": 9}, 422, "to"),
        ("checkpoint", {"size": -1}, 422, "size"),
    ],
)
def test_out_of_range_arguments_are_problems(
    client: TestClient,
    filled: list[bytes],
    path: str,
    params: dict[str, object],
    status: int,
    field: str | None,
) -> None:
    response = client.get(f"/v1/ledgers/{LEDGER}/{path}", params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    if field:
        assert response.json()["field"] == field


def test_unknown_ledgers_have_no_checkpoint_or_proofs(client: TestClient) -> None:
    for path in ("checkpoint", "proofs/inclusion?seq=1", "proofs/consistency?from=1"):
        assert client.get(f"/v1/ledgers/nope/{path}").status_code == 404


def test_a_record_with_its_proof_and_checkpoint(client: TestClient, filled: list[bytes]) -> None:
    body = client.get(f"/v1/ledgers/{LEDGER}/events/5", params={"proof": "true"}).json()
    checkpoint = notes.verify(body["checkpoint"], [verifier(client)]).checkpoint
    proof = body["proof"]
    assert proof["tree_size"] == checkpoint.tree_size
    canonical = rfc8785.dumps(body["record"])
    assert canonical == filled[4]
    verify_inclusion(
        4,
        checkpoint.tree_size,
        leaf_hash(canonical),
        [b64d(h) for h in proof["proof"]],
        checkpoint.root,
    )
    plain = client.get(f"/v1/ledgers/{LEDGER}/events/5")
    assert plain.content == filled[4]


def test_clients_cannot_post_a_key_rotation(client: TestClient) -> None:
    client.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    forged = {
        "type": "key.rotated",
        "occurred_at": "2025-02-24",
        "data": {"new_key": "x", "old_key": "y", "endorsement": "z"},
    }
    response = client.post(f"/v1/ledgers/{LEDGER}/events", json=forged)
    assert response.status_code == 422 and response.json()["field"] == "type"
