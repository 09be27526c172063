"""HTTP surface of the positions projection: the signed snapshot (format §6)."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from ledger.core.hashing import leaf_hash
from ledger.core.merkle import root_from_leaves
from ledger.core.positions import verify_snapshot_signature
from ledger.core.signing import VerifierKey
from tests.api.conftest import assert_problem
from tests.core.test_positions import DEMO

LEDGER = "demo"


@pytest.fixture
def demo(client: TestClient) -> list[bytes]:
    client.post("/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    events = [json.loads(line) for line in DEMO.read_text().splitlines()]
    assert client.post(f"/v1/ledgers/{LEDGER}/events", json=events).status_code == 201
    response = client.get(
        f"/v1/ledgers/{LEDGER}/events", headers={"Accept": "application/x-ndjson"}
    )
    return response.content.splitlines()


def test_the_snapshot_as_of_24_february(client: TestClient, demo: list[bytes]) -> None:
    snapshot = client.get(f"/v1/ledgers/{LEDGER}/snapshot", params={"as_of": "2025-02-24"}).json()
    assert snapshot["state"]["US"]["security-guarantees"]["stance"] == "oppose"
    assert snapshot["as_of"] == "2025-02-24T23:59:59Z"
    assert snapshot["known_at"] == snapshot["tree_size"] == len(demo)
    root = root_from_leaves([leaf_hash(line) for line in demo])
    assert base64.b64decode(snapshot["merkle_root"]) == root
    (key,) = client.get("/v1/keys").json()["items"]
    verify_snapshot_signature(snapshot, VerifierKey.from_string(key["verifier_key"]))


def test_the_snapshot_as_of_13_february(client: TestClient, demo: list[bytes]) -> None:
    snapshot = client.get(f"/v1/ledgers/{LEDGER}/snapshot", params={"as_of": "2025-02-13"}).json()
    assert snapshot["state"]["US"]["revenue-share"]["terms"]["share_percent"] == 50
    assert "UA" not in snapshot["state"]


def test_known_at_as_a_seq_or_a_time(client: TestClient, demo: list[bytes]) -> None:
    by_seq = client.get(f"/v1/ledgers/{LEDGER}/snapshot", params={"known_at": "22"}).json()
    assert by_seq["known_at"] == 22 and "as_of" not in by_seq
    # Before the correction at seq 23, the 100% demand was attributed to CNN.
    assert (
        by_seq["state"]["US"]["revenue-share"]["source"]["name"]
        != (
            client.get(f"/v1/ledgers/{LEDGER}/snapshot").json()["state"]["US"]["revenue-share"][
                "source"
            ]["name"]
        )
    )
    everything = client.get(
        f"/v1/ledgers/{LEDGER}/snapshot", params={"known_at": "2999-01-01"}
    ).json()
    assert everything["known_at"] == len(demo)
    nothing = client.get(
        f"/v1/ledgers/{LEDGER}/snapshot", params={"known_at": "2000-01-01T00:00:00Z"}
    ).json()
    assert nothing["known_at"] == 0 and nothing["state"] == {} and nothing["claims"] == {}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"as_of": "2025-02-30"}, "as_of"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"known_at": "999"}, "known_at"),
        ({"known_at": "soon"}, "known_at"),
    ],
)
def test_bad_bounds_are_problems(
    client: TestClient, demo: list[bytes], params: dict[str, str], field: str
) -> None:
    response = client.get(f"/v1/ledgers/{LEDGER}/snapshot", params=params)
    assert_problem(response, 422, field=field)


def test_an_unknown_ledger_has_no_snapshot(client: TestClient) -> None:
    assert_problem(client.get("/v1/ledgers/nope/snapshot"), 404)


def test_a_party_view_holds_its_positions_and_claims_about_it(
    client: TestClient, demo: list[bytes]
) -> None:
    ua = client.get(f"/v1/ledgers/{LEDGER}/parties/UA", params={"as_of": "2025-02-24"}).json()
    assert ua["party"] == "UA" and ua["known_at"] == len(demo)
    assert ua["positions"]["security-guarantees"]["stance"] == "conditional"
    assert ua["claims"]["revenue-share"]["US"]["stance"] == "support"
    early = client.get(f"/v1/ledgers/{LEDGER}/parties/UA", params={"as_of": "2025-02-11"}).json()
    assert early["positions"] == {} and "revenue-share" in early["claims"]
    nobody = client.get(f"/v1/ledgers/{LEDGER}/parties/EU").json()
    assert nobody["positions"] == {} and nobody["claims"] == {}


def test_history_lists_stance_changes_with_their_fixes(
    client: TestClient, demo: list[bytes]
) -> None:
    history = client.get(
        f"/v1/ledgers/{LEDGER}/history", params={"party": "US", "topic": "revenue-share"}
    ).json()
    items = history["items"]
    assert [i["occurred_at"] for i in items] == sorted(i["occurred_at"] for i in items)
    assert items[0]["from"] is None and items[0]["to"] == "demand"
    corrected = [i for i in items if i["fixes"]]
    assert corrected and corrected[0]["fixes"][0]["kind"] == "corrected"
    assert "New York Times" in corrected[0]["source"]["name"]
    before_fix = client.get(
        f"/v1/ledgers/{LEDGER}/history",
        params={"party": "US", "topic": "revenue-share", "known_at": "22"},
    ).json()
    assert all(not i["fixes"] for i in before_fix["items"])


def test_diff_shows_before_and_after(client: TestClient, demo: list[bytes]) -> None:
    diff = client.get(
        f"/v1/ledgers/{LEDGER}/diff", params={"from": "2025-02-13", "to": "2025-02-24"}
    ).json()
    security = diff["changes"]["US"]["security-guarantees"]
    assert security["before"] is None and security["after"]["stance"] == "oppose"
    share = diff["changes"]["US"]["revenue-share"]
    assert share["before"]["terms"]["share_percent"] == 50
    assert share["after"]["terms"]["share_percent"] == 100
    same = client.get(
        f"/v1/ledgers/{LEDGER}/diff", params={"from": "2025-02-24", "to": "2025-02-24"}
    ).json()
    assert same["changes"] == {} and same["claims"] == {}
    missing = client.get(f"/v1/ledgers/{LEDGER}/diff", params={"from": "2025-02-13"})
    assert_problem(missing, 422, field="to")
