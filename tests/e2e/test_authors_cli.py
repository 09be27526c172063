"""``ledger authors`` from the command line, while a real server with
authentication on serves the ledger: the server obeys a binding and a
revocation the moment the command has made them, and ``ledger verify``
reports the signatures it checked."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core.authors import sign_event
from ledger.core.signing import VerifierKey
from tests.conftest import position
from tests.e2e.test_cli import run_ledger
from tests.e2e.test_tokens_cli import create_token
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow

DESK = Ed25519PrivateKey.generate()


def signed() -> dict[str, Any]:
    event = position(party="UA", occurred_at="2025-02-20T00:00:00Z", id=str(uuid.uuid4()))
    return {**event, "author": sign_event(DESK, "ua-desk", "talks", event)}


def test_a_desk_is_registered_bound_revoked_and_verified_from_the_shell(tmp_path: Path) -> None:
    # One backend: the registry's rules under the lock, across processes, are held on
    # both by tests/storage/test_authors.py; this is the shell and a live server.
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"

    def ledger(*args: str) -> str:
        done = run_ledger(*args, database_url=database_url, data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    admin = create_token("root", "admin", database_url=database_url, data_dir=tmp_path)
    desk = create_token("kyiv-desk", "append", database_url=database_url, data_dir=tmp_path)
    server = ServerProcess(
        database_url=database_url, data_dir=tmp_path, env={"LEDGER_AUTH": "tokens"}
    )
    try:
        events = f"{server.url}/v1/ledgers/talks/events"
        as_desk = {"Authorization": f"Bearer {desk}"}
        created = httpx.post(
            f"{server.url}/v1/ledgers",
            json={"name": "talks"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert created.status_code == 201
        # Cached by the server as an unbound token from here on.
        assert httpx.post(events, json=position(), headers=as_desk).status_code == 201

        key = VerifierKey.from_public_key("ua-desk", DESK.public_key()).to_string()
        added = ledger("authors", "add", "ua-desk", key, "--token", "kyiv-desk")
        assert "talks: author.registered at seq 2" in added
        unsigned = httpx.post(events, json=position(), headers=as_desk)
        assert unsigned.status_code == 401 and unsigned.json()["field"] == "author"
        assert httpx.post(events, json=signed(), headers=as_desk).status_code == 201

        ledger("authors", "revoke", "ua-desk", "--reason", "key lost")
        refused = httpx.post(events, json=signed(), headers=as_desk)
        assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
    finally:
        server.stop()

    listed = json.loads(ledger("authors", "list", "talks", "--json"))
    assert [(a["name"], a["status"], a["revoked_seq"]) for a in listed] == [
        ("ua-desk", "revoked", 4)
    ]
    tokens = {row["name"]: row for row in json.loads(ledger("tokens", "list", "--json"))}
    assert tokens["kyiv-desk"]["author"] == "ua-desk"
    verified = ledger("verify", "talks")
    assert "VALID" in verified and "1 signed record checked" in verified
