"""``verify=True`` against a network that lies: a proxy between the client and
a real server alters a receipt, a record, a proof or a checkpoint, or serves
an older or a forked log, and each is caught and named."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ledger_client import Client, VerificationError
from tests.client.proxy import Reply, proxy
from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

Edit = Callable[[str, str, httpx.Response], Reply | None]


def passed(response: httpx.Response, body: bytes) -> Reply:
    kept = {"Content-Type": response.headers["content-type"]}
    return Reply(response.status_code, body, kept)


def json_edit(method: str, fragment: str, change: Callable[[object], object]) -> Edit:
    """Rewrite the JSON of every answer to ``method`` on a path containing ``fragment``."""

    def edit(seen: str, path: str, response: httpx.Response) -> Reply | None:
        if seen != method or fragment not in path or response.status_code >= 300:
            return None
        return passed(response, json.dumps(change(response.json())).encode())

    return edit


def flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


def flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def caught(
    server: ServerProcess, key: str, ledger: str, edit: Edit, tmp_path: Path
) -> VerificationError:
    with proxy(server.url) as network:
        network.alter = edit  # type: ignore[assignment]
        client = Client(network.url, trusted_keys=[key], state=tmp_path / "state.json")
        with client, pytest.raises(VerificationError) as raised:
            client.append(ledger, position(), verify=True)
    return raised.value


def test_an_honest_network_verifies(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    with proxy(server.url) as network, Client(network.url, trusted_keys=[log_key]) as client:
        assert client.append(ledger, position(), verify=True).verified_in == 1


def test_an_altered_receipt_hash_is_caught(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    edit = json_edit("POST", "/events", lambda r: {**r, "hash": flip_hex(r["hash"])})  # type: ignore[dict-item,index]
    assert caught(server, log_key, ledger, edit, tmp_path).check == "receipt"


def test_a_receipt_for_another_event_is_caught(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    other = "0193f0c2-5a1e-7c4d-8b2a-3e4f5a6b7c8d"
    edit = json_edit("POST", "/events", lambda r: {**r, "id": other})  # type: ignore[dict-item]
    error = caught(server, log_key, ledger, edit, tmp_path)
    assert error.check == "receipt" and other in error.reason


def test_a_record_other_than_the_event_sent_is_caught(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    def soften(page: object) -> object:
        assert isinstance(page, dict)
        for item in page["items"]:
            item["data"]["stance"] = "support"
        return page

    error = caught(server, log_key, ledger, json_edit("GET", "/events?", soften), tmp_path)
    # The altered bytes no longer hash to the receipt's hash.
    assert error.check == "receipt" and error.seq == 1


def test_an_altered_inclusion_proof_is_caught(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    with Client(server.url) as client:
        client.append(ledger, position())  # so the next record's proof is not empty
    edit = json_edit(
        "GET",
        "/proofs/inclusion",
        lambda p: {**p, "proof": [flip_b64(h) for h in p["proof"]]},  # type: ignore[dict-item,index]
    )
    error = caught(server, log_key, ledger, edit, tmp_path)
    assert error.check == "inclusion" and error.seq == 2


def test_an_altered_checkpoint_is_caught(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    def reroot(method: str, path: str, response: httpx.Response) -> Reply | None:
        if not path.endswith("/checkpoint"):
            return None
        origin, size, root, rest = response.text.split("\n", 3)
        return passed(response, "\n".join([origin, size, flip_b64(root), rest]).encode())

    error = caught(server, log_key, ledger, reroot, tmp_path)
    assert error.check == "checkpoint"


def test_a_checkpoint_signed_by_another_key_is_caught(
    server: ServerProcess, ledger: str, tmp_path: Path
) -> None:
    from ledger.core.signing import Signer

    stranger = Signer.generate("ledger.test").verifier.to_string()
    error = caught(server, stranger, ledger, lambda m, p, r: None, tmp_path)
    assert error.check == "checkpoint"


def test_a_log_rolled_back_behind_the_remembered_checkpoint_is_caught(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with Client(server.url, trusted_keys=[log_key], state=state) as client:
        client.append_many(ledger, [position(), position()], verify=True)
    older = httpx.get(f"{server.url}/v1/ledgers/{ledger}/checkpoint", params={"size": 1}).text

    def roll_back(method: str, path: str, response: httpx.Response) -> Reply | None:
        if path.endswith("/checkpoint"):
            return passed(response, older.encode())
        return None

    with proxy(server.url) as network:
        network.alter = roll_back  # type: ignore[assignment]
        client = Client(network.url, trusted_keys=[log_key], state=state)
        with client, pytest.raises(VerificationError) as raised:
            client.checkpoint(ledger)
    assert raised.value.check == "consistency" and "rollback" in raised.value.reason


def test_a_forked_log_under_the_same_key_is_caught(
    server: ServerProcess, log_key: str, ledger: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with Client(server.url, trusted_keys=[log_key], state=state) as client:
        client.append(ledger, position(), verify=True)
    # A second server holding the same key writes another history of the ledger.
    twin_dir = tmp_path / "twin"
    twin_dir.mkdir()
    shutil.copytree(Path(server.log_path).parent / "keys", twin_dir / "keys")
    twin = ServerProcess(database_url=f"sqlite:///{twin_dir / 'ledger.db'}", data_dir=twin_dir)
    try:
        httpx.post(f"{twin.url}/v1/ledgers", json={"name": ledger}).raise_for_status()
        client = Client(twin.url, trusted_keys=[log_key], state=state)
        with client, pytest.raises(VerificationError) as raised:
            client.append_many(ledger, [position(stance="support")] * 2, verify=True)
    finally:
        twin.stop()
    assert raised.value.check == "consistency" and "fork" in raised.value.reason


def test_records_read_with_verify_refuse_an_altered_page(
    server: ServerProcess, log_key: str, ledger: str
) -> None:
    with Client(server.url) as client:
        client.append_many(ledger, [position(), position(stance="demand")])

    def soften(page: object) -> object:
        assert isinstance(page, dict)
        page["items"][1]["data"]["stance"] = "support"
        return page

    with proxy(server.url) as network:
        network.alter = json_edit("GET", "/events?", soften)  # type: ignore[assignment]
        with Client(network.url, trusted_keys=[log_key]) as client:
            # Unverified, the altered page is read as sent; verified, it is refused.
            assert [r.data["stance"] for r in client.records(ledger)] == ["oppose", "support"]
            with pytest.raises(VerificationError) as raised:
                list(client.records(ledger, verify=True))
    assert raised.value.check == "inclusion" and raised.value.seq == 2
