"""Tokens from the command line, used against a real server with authentication on."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import position
from tests.e2e.test_cli import run_ledger
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


def create_token(name: str, *scopes: str, database_url: str, data_dir: Path) -> str:
    args = ["tokens", "create", "--name", name]
    for scope in scopes:
        args += ["--scope", scope]
    result = run_ledger(*args, database_url=database_url, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    # The token is the last word of the output, and nothing else is on stdout.
    token = result.stdout.split()[-1]
    assert result.stdout.strip() == token and token.startswith("lgr_")
    return token


def test_tokens_are_created_scoped_listed_and_revoked(database_url: str, tmp_path: Path) -> None:
    admin = create_token("root", "admin", database_url=database_url, data_dir=tmp_path)
    ukraine = create_token("kyiv-desk", "append:UA", database_url=database_url, data_dir=tmp_path)
    server = ServerProcess(
        database_url=database_url, data_dir=tmp_path, env={"LEDGER_AUTH": "tokens"}
    )
    try:
        url = server.url
        as_admin = {"Authorization": f"Bearer {admin}"}
        as_ukraine = {"Authorization": f"Bearer {ukraine}"}
        assert httpx.post(f"{url}/v1/ledgers", json={"name": "talks"}).status_code == 401
        created = httpx.post(f"{url}/v1/ledgers", json={"name": "talks"}, headers=as_admin)
        assert created.status_code == 201
        events = f"{url}/v1/ledgers/talks/events"
        appended = httpx.post(events, json=position(party="UA"), headers=as_ukraine)
        assert appended.status_code == 201, appended.text
        record = httpx.get(f"{events}/{appended.json()['seq']}").json()
        assert record["actor"] == "kyiv-desk"
        assert httpx.post(events, json=position(party="US"), headers=as_ukraine).status_code == 403

        listed = run_ledger(
            "tokens", "list", "--json", database_url=database_url, data_dir=tmp_path
        )
        rows = {row["name"]: row for row in json.loads(listed.stdout)}
        assert rows["kyiv-desk"]["scopes"] == ["append:UA"]
        assert admin not in listed.stdout and ukraine not in listed.stdout

        revoked = run_ledger(
            "tokens", "revoke", "kyiv-desk", database_url=database_url, data_dir=tmp_path
        )
        assert revoked.returncode == 0, revoked.stderr
        refused = httpx.post(events, json=position(party="UA"), headers=as_ukraine)
        assert refused.status_code == 401
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert '"action":"append"' in log and '"principal":"kyiv-desk"' in log
    assert ukraine not in log and admin not in log


def test_a_bad_scope_is_refused_before_anything_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    result = run_ledger(
        "tokens",
        "create",
        "--name",
        "x",
        "--scope",
        "write",
        database_url=database_url,
        data_dir=tmp_path,
    )
    assert result.returncode != 0
    assert "is not a scope" in result.stderr
    listed = run_ledger("tokens", "list", "--json", database_url=database_url, data_dir=tmp_path)
    assert json.loads(listed.stdout) == []


def test_the_demo_prints_an_admin_token_and_verify_audits_the_store(
    database_url: str, tmp_path: Path
) -> None:
    demo = run_ledger("demo", "--no-serve", database_url=database_url, data_dir=tmp_path)
    assert demo.returncode == 0, demo.stderr
    line = next(x for x in demo.stdout.splitlines() if x.startswith("admin token"))
    token = line.split()[-1]
    listed = run_ledger("tokens", "list", "--json", database_url=database_url, data_dir=tmp_path)
    assert [row["scopes"] for row in json.loads(listed.stdout)] == [["admin"]]
    assert token.startswith("lgr_")
    audit = run_ledger("verify", database_url=database_url, data_dir=tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "VALID us-ua-minerals-2025: 23 records" in audit.stdout


def test_ledger_verify_reads_a_private_ledger_with_a_token(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger_client.verify import main as verify_main

    admin = create_token("root", "admin", database_url=database_url, data_dir=tmp_path)
    reader = create_token("auditor", "read:sealed", database_url=database_url, data_dir=tmp_path)
    server = ServerProcess(
        database_url=database_url, data_dir=tmp_path, env={"LEDGER_AUTH": "tokens"}
    )
    try:
        as_admin = {"Authorization": f"Bearer {admin}"}
        body = {"name": "sealed", "public_read": False}
        assert httpx.post(f"{server.url}/v1/ledgers", json=body, headers=as_admin).is_success
        events = [position(), position(party="UA")]
        url = f"{server.url}/v1/ledgers/sealed/events"
        assert httpx.post(url, json=events, headers=as_admin).is_success
        key = httpx.get(f"{server.url}/v1/keys").json()["items"][0]["verifier_key"]
        args = ["server", server.url, "--ledger", "sealed", "--key", key, "--json"]
        assert verify_main(args) == 2  # 401: the ledger cannot be read, nothing verified
        capsys.readouterr()
        assert verify_main([*args, "--token", reader]) == 0
        assert json.loads(capsys.readouterr().out)["valid"] is True
    finally:
        server.stop()
