"""The signing identity (origin and key name) outlives the host it runs on.

A container recreated on the same data directory comes back with a new host
name; its checkpoints must still verify with the verifier key published
before. Changing the identity on purpose is a rotation, recorded in every
ledger as ``key.rotated``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ledger.core.records import Record
from ledger.core.signing import VerifierKey, follow_rotation
from tests.conftest import position
from tests.servers import ChildServer, free_port

pytestmark = pytest.mark.slow
LEDGER = "talks"
VERIFY = Path(sys.executable).parent / "ledger-verify"


def _can_set_host_name() -> bool:
    try:
        probe = subprocess.run(
            ["unshare", "--uts", "hostname", "probe-host"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def environment(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_DATA_DIR": str(data_dir),
        "LEDGER_LOG_LEVEL": "warning",
        "LEDGER_AUTH": "off",
        "LEDGER_RATE_LIMIT": "0",
        **extra,
    }
    for name in ("LEDGER_ORIGIN", "LEDGER_KEY_NAME", "LEDGER_SIGNING_KEY"):
        if name not in extra:
            env.pop(name, None)
    return env


def serve_on_host(host_name: str, env: dict[str, str], data_dir: Path) -> ChildServer:
    """``ledger serve`` in a UTS namespace of its own: what a recreated container is."""
    port = free_port()
    command = [
        "unshare",
        "--uts",
        "sh",
        "-c",
        'hostname "$1" && shift && exec "$@"',
        "sh",
        host_name,
        sys.executable,
        "-m",
        "ledger",
        "serve",
        "--port",
        str(port),
    ]
    return ChildServer(command, port=port, log_path=data_dir / f"{host_name}.log", env=env)


def append(server: ChildServer, *stances: str) -> None:
    events = [position(stance=stance) for stance in stances]
    httpx.post(f"{server.url}/v1/ledgers/{LEDGER}/events", json=events).raise_for_status()


def ledger_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VERIFY), *args], capture_output=True, text=True, timeout=120, check=False
    )


def run_ledger(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not _can_set_host_name(), reason="needs unshare --uts (root)")
def test_a_server_recreated_under_another_host_name_keeps_its_published_key(
    database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = environment(database_url, data_dir)
    first = serve_on_host("container-a1b2c3", env, tmp_path)
    try:
        httpx.post(f"{first.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        append(first, "oppose", "demand")
        (published,) = [
            k["verifier_key"] for k in httpx.get(f"{first.url}/v1/keys").json()["items"]
        ]
        origin = httpx.get(f"{first.url}/v1/ledgers/{LEDGER}/checkpoint").text.split("\n")[0]
    finally:
        first.stop()
    assert "container-a1b2c3" not in published + origin

    second = serve_on_host("container-d4e5f6", env, tmp_path)
    try:
        append(second, "offer")
        keys = httpx.get(f"{second.url}/v1/keys").json()["items"]
        assert [k["verifier_key"] for k in keys] == [published]
        assert keys[0]["origin"] == origin.removesuffix(f"/{LEDGER}")
        checkpoint = httpx.get(f"{second.url}/v1/ledgers/{LEDGER}/checkpoint").text
        assert checkpoint.split("\n")[:2] == [origin, "3"]
        live = ledger_verify("server", second.url, "--ledger", LEDGER, "--key", published)
        assert live.returncode == 0, live.stdout + live.stderr
        assert "VALID" in live.stdout
        bundle = tmp_path / "talks.tar"
        bundle.write_bytes(httpx.get(f"{second.url}/v1/ledgers/{LEDGER}/export").content)
    finally:
        second.stop()
    offline = ledger_verify("bundle", str(bundle), "--key", published)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "records 1-3" in offline.stdout


def test_a_configured_identity_other_than_the_stored_one_refuses_to_start(
    database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = run_ledger(
        "demo", "--no-serve", env=environment(database_url, data_dir, LEDGER_ORIGIN="a.example")
    )
    assert first.returncode == 0, first.stderr
    moved = environment(database_url, data_dir, LEDGER_ORIGIN="b.example")
    port = free_port()
    refused = subprocess.run(
        [sys.executable, "-m", "ledger", "serve", "--port", str(port)],
        env=moved,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "a.example" in said and "b.example" in said
    assert "ledger keys rotate --origin b.example" in said
    assert "Traceback" not in said
    # The command the refusal names runs under the new configuration.
    rotated = run_ledger("keys", "rotate", "--origin", "b.example", env=moved)
    assert rotated.returncode == 0, rotated.stderr
    assert run_ledger("keys", "show", env=moved).returncode == 0

    renamed = run_ledger(
        "keys",
        "show",
        env=environment(database_url, data_dir, LEDGER_ORIGIN="b.example", LEDGER_KEY_NAME="k2"),
    )
    assert renamed.returncode != 0
    assert "b.example" in renamed.stderr and "k2" in renamed.stderr
    assert "--name k2" in renamed.stderr


def test_rotating_to_a_new_origin_is_recorded_and_followed(
    database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    old_env = environment(database_url, data_dir, LEDGER_ORIGIN="a.example")
    demo = run_ledger("demo", "--no-serve", env=old_env)
    assert demo.returncode == 0, demo.stderr
    published = demo.stdout.split("verifier key: ")[1].split()[0]
    assert published.startswith("a.example+")

    rotated = run_ledger("keys", "rotate", "--origin", "b.example", env=old_env)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.split("new key: ")[1].split()[0]
    assert new_key.startswith("b.example+")

    new_env = environment(database_url, data_dir, LEDGER_ORIGIN="b.example")
    # The old configuration is now the one refused, naming the new origin.
    stale = run_ledger("keys", "show", env=old_env)
    assert stale.returncode != 0 and "b.example" in stale.stderr

    from tests.servers import ServerProcess

    server = ServerProcess(database_url=database_url, data_dir=data_dir, env=new_env)
    try:
        ledger = "us-ua-minerals-2025"
        records = httpx.get(
            f"{server.url}/v1/ledgers/{ledger}/events",
            headers={"Accept": "application/x-ndjson"},
        ).content.splitlines()
        record = Record.from_dict(json.loads(records[-1]))
        assert record.type == "key.rotated"
        followed = follow_rotation(
            VerifierKey.from_string(published),
            record.data["new_key"],
            base64.b64decode(record.data["endorsement"]),
        )
        assert followed.to_string() == new_key
        httpx.post(
            f"{server.url}/v1/ledgers/{ledger}/events", json=[position(stance="offer")]
        ).raise_for_status()
        checkpoint = httpx.get(f"{server.url}/v1/ledgers/{ledger}/checkpoint").text
        assert checkpoint.startswith(f"b.example/{ledger}\n")
        for key in (published, new_key):
            live = ledger_verify("server", server.url, "--ledger", ledger, "--key", key)
            assert live.returncode == 0, live.stdout + live.stderr
    finally:
        server.stop()
    # The server's own audit accepts the checkpoints of both origins.
    audit = run_ledger("verify", env=new_env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
