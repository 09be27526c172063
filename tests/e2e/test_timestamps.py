"""Trusted time end to end: a real server timestamps its checkpoints with a real
local RFC 3161 authority (tests/tsa.py), and ``ledger-verify --tsa-cert``
checks the token of a live ledger and of an export against the checkpoint it
trusts; an authority that never answers costs appends nothing.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ledger_client.verify import main as verify_main
from tests.conftest import position
from tests.servers import ServerProcess
from tests.tsa import LocalTsa, TsaAuthority, make_authority

pytestmark = pytest.mark.slow
LEDGER = "audit"
STANCES = ["oppose", "demand", "offer", "reject", "support"]


@dataclass(frozen=True)
class Setup:
    server: ServerProcess
    tsa: LocalTsa
    stranger: TsaAuthority
    key: str
    attested_at: str
    bundle: Path


def append(server: ServerProcess, count: int) -> None:
    events = [position(stance=STANCES[n % len(STANCES)]) for n in range(count)]
    httpx.post(f"{server.url}/v1/ledgers/{LEDGER}/events", json=events).raise_for_status()


def timestamp_of(server: ServerProcess, size: int, timeout: float = 15.0) -> httpx.Response:
    """The served timestamp of tree size ``size``, once the server stored it."""
    deadline = time.monotonic() + timeout
    url = f"{server.url}/v1/ledgers/{LEDGER}/checkpoint/timestamp"
    while time.monotonic() < deadline:
        response = httpx.get(url, params={"size": size})
        if response.status_code == 200:
            return response
        time.sleep(0.05)
    raise AssertionError(f"no timestamp of size {size} within {timeout} s")


def tsa_env(url: str, chain: Path, interval: float) -> dict[str, str]:
    return {
        "LEDGER_TSA_URL": url,
        "LEDGER_TSA_CERTS": str(chain),
        "LEDGER_TSA_INTERVAL": str(interval),
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("timestamps")
    stranger = make_authority(base / "stranger", "Stranger TSA")
    with LocalTsa(make_authority(base / "tsa")) as tsa:
        data_dir = base / "server"
        data_dir.mkdir()
        server = ServerProcess(
            database_url=f"sqlite:///{data_dir / 'ledger.db'}",
            data_dir=data_dir,
            env=tsa_env(tsa.url, tsa.authority.chain, 0.1),
        )
        try:
            httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
            append(server, 10)
            stamped = timestamp_of(server, 10)
            # A bundle of 12 records: no checkpoint of 11 or 12 was ever stored, so
            # it carries the timestamp of 10 and the proof that 10 is a prefix of 12.
            append(server, 5)
            bundle = base / "audit.tar"
            export = f"{server.url}/v1/ledgers/{LEDGER}/export?to_seq=12"
            bundle.write_bytes(httpx.get(export).content)
            items = httpx.get(f"{server.url}/v1/keys").json()["items"]
            yield Setup(
                server=server,
                tsa=tsa,
                stranger=stranger,
                key=str(items[0]["verifier_key"]),
                attested_at=stamped.headers["Ledger-Attested-At"],
                bundle=bundle,
            )
        finally:
            server.stop()


def run_verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = verify_main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, json.loads(captured.out)


def test_the_server_stores_a_timestamp_the_authority_signed(setup: Setup) -> None:
    response = timestamp_of(setup.server, 10)
    assert response.headers["Content-Type"] == "application/timestamp-reply"
    assert response.headers["Ledger-Timestamp-Authority"] == setup.tsa.url
    assert setup.attested_at.endswith("Z")


def test_ledger_verify_server_checks_the_timestamp_and_reports_its_time(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    timestamp_of(setup.server, 15)  # the newest checkpoint is timestamped too, by now
    argv = ["server", setup.server.url, "--ledger", LEDGER, "--key", setup.key]
    code, result = run_verify(capsys, *argv, "--tsa-cert", str(setup.tsa.authority.chain))
    assert code == 0, result
    stamp = result["timestamp"]
    assert isinstance(stamp, dict)
    assert stamp["authority"] == "CN=Test TSA" and stamp["chain_checked"] is True
    assert stamp["verified_size"] == 15 and stamp["tree_size"] == 15
    checks = result["checks"]
    assert isinstance(checks, list)
    assert any(f"by {stamp['attested_at']} by CN=Test TSA" in c for c in checks), checks
    # Without --tsa-cert nothing about time is claimed.
    code, plain = run_verify(capsys, *argv)
    assert code == 0 and "timestamp" not in plain


def test_ledger_verify_server_with_another_authority_s_chain_fails(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["server", setup.server.url, "--ledger", LEDGER, "--key", setup.key]
    code, result = run_verify(capsys, *argv, "--tsa-cert", str(setup.stranger.chain))
    assert code == 1
    assert str(result["reason"]).startswith("timestamp: the timestamp does not verify")


def test_ledger_verify_bundle_checks_the_carried_timestamp(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bundle", str(setup.bundle), "--key", setup.key]
    code, result = run_verify(capsys, *argv, "--tsa-cert", str(setup.tsa.authority.chain))
    assert code == 0, result
    assert result["timestamp"] == {
        "tree_size": 10,
        "verified_size": 12,
        "attested_at": setup.attested_at,
        "authority": "CN=Test TSA",
        "chain_checked": True,
    }
    code, result = run_verify(capsys, *argv, "--tsa-cert", str(setup.stranger.chain))
    assert code == 1 and "does not verify" in str(result["reason"])


def test_the_human_verdict_names_the_attested_time_and_the_authority(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bundle", str(setup.bundle), "--key", setup.key]
    assert verify_main([*argv, "--tsa-cert", str(setup.tsa.authority.chain)]) == 0
    line = " ".join(capsys.readouterr().out.split())
    assert (
        "RFC 3161 timestamp of the checkpoint of tree size 10, consistent with 12: "
        f"existed by {setup.attested_at} by CN=Test TSA;"
    ) in line


def test_an_unreadable_tsa_cert_file_is_a_usage_error(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "chain.pem"
    bad.write_text("not a certificate\n")
    argv = ["bundle", str(setup.bundle), "--key", setup.key, "--tsa-cert", str(bad)]
    code, result = run_verify(capsys, *argv)
    assert code == 2 and "TSA certificate file" in str(result["error"])


def test_an_authority_that_never_answers_costs_appends_nothing(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An authority that accepts the connection and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.settimeout(10)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        server = ServerProcess(
            database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
            data_dir=tmp_path,
            env=tsa_env(url, setup.tsa.authority.chain, 0.1),
        )
        try:
            httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
            append(server, 1)
            # The timestamping thread is now waiting on this connection (for
            # up to 10 s) while the appends below run.
            asking, _ = silent.accept()
            slowest = 0.0
            with httpx.Client(base_url=server.url) as http:
                for n in range(40):
                    started = time.monotonic()
                    response = http.post(f"/v1/ledgers/{LEDGER}/events", json=position())
                    slowest = max(slowest, time.monotonic() - started)
                    assert response.status_code == 201, (n, response.text)
                missing = http.get(f"/v1/ledgers/{LEDGER}/checkpoint/timestamp")
            assert slowest < 1.0, slowest
            assert missing.status_code == 404
            key = httpx.get(f"{server.url}/v1/keys").json()["items"][0]["verifier_key"]
            argv = ["server", server.url, "--ledger", LEDGER, "--key", key]
            code, result = run_verify(capsys, *argv, "--tsa-cert", str(setup.tsa.authority.chain))
        finally:
            server.stop()
        asking.close()
    assert code == 1 and "holds no timestamp" in str(result["reason"]), result
