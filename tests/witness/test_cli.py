"""``ledger witness init / add-log / serve`` end to end, as their users run them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ledger.core.cosignature import CosignerKey
from ledger.core.signing import Signer
from ledger.witness.state import WitnessState
from tests.servers import ChildServer, free_port
from tests.witnesses import TestLog

pytestmark = pytest.mark.slow


def _run(*args: str, module: str = "ledger.witness") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400"},
    )


def test_init_through_the_ledger_command_then_add_log_and_serve(tmp_path: Path) -> None:
    directory = tmp_path / "witness"
    created = _run("witness", "init", str(directory), "--name", "w.test/one", module="ledger")
    assert created.returncode == 0, created.stderr
    verifier = CosignerKey.from_string(created.stdout.strip().splitlines()[-1])
    assert verifier.name == "w.test/one"
    key_file = directory / "witness-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")

    log = TestLog()
    old_key, new_key = Signer.generate(log.origin), log.signer
    for signer in (old_key, new_key):
        added = _run(
            "add-log", str(directory), "--origin", log.origin, "--key", signer.verifier.to_string()
        )
        assert added.returncode == 0, added.stderr
        assert "witnessing log.test/one" in added.stdout
    again = _run("add-log", str(directory), "--origin", log.origin, "--key", log.verifier_key)
    assert again.returncode == 0 and "already trusted" in again.stdout
    state = WitnessState.open(directory)
    try:
        assert state.logs() == {
            log.origin: sorted([old_key.verifier, new_key.verifier], key=lambda k: k.to_string())
        }
    finally:
        state.close()

    port = free_port()
    server = ChildServer(
        [sys.executable, "-m", "ledger.witness", "serve", str(directory), "--port", str(port)],
        port=port,
        log_path=tmp_path / "serve.log",
        ready_path="/health",
    )
    try:
        log.grow(3)
        response = httpx.post(f"{server.url}/add-checkpoint", content=log.request(0))
        assert response.status_code == 200, response.text
        assert response.text.startswith(f"\u2014 {verifier.name} ")
    finally:
        server.stop()


def test_init_refuses_a_directory_that_holds_a_witness(tmp_path: Path) -> None:
    directory = tmp_path / "w"
    first = _run("init", str(directory), "--name", "w.test/a")
    assert first.returncode == 0
    key = (directory / "witness-key.pem").read_bytes()
    second = _run("init", str(directory), "--name", "w.test/b")
    assert second.returncode == 1
    assert "already holds a witness" in second.stderr
    assert (directory / "witness-key.pem").read_bytes() == key


BAD_ARGUMENTS = [
    (["init", "{dir}/x", "--name", "has space"], "witness name"),
    (["init", "{dir}/x", "--name", "a+b"], "witness name"),
    (["init", "{dir}/w/witness.db", "--name", "w.test/d"], "not a directory"),
    (["add-log", "{dir}/none", "--origin", "o", "--key", "{key}"], "holds no witness"),
    (["add-log", "{dir}/w", "--origin", "o", "--key", "not a key"], "--key"),
    (["add-log", "{dir}/w", "--origin", "o", "--key", "{cosigner}"], "--key"),
    (["add-log", "{dir}/w", "--origin", "", "--key", "{key}"], "origin"),
    (["serve", "{dir}/none"], "holds no witness"),
    (["serve", "{dir}/corrupt"], "not a readable SQLite database"),
]


def test_bad_arguments_exit_1_with_a_message(tmp_path: Path) -> None:
    created = _run("init", str(tmp_path / "w"), "--name", "w.test/c")
    # A witness's own (type 0x04) key is not a log key (type 0x01).
    cosigner = created.stdout.strip().splitlines()[-1]
    key = Signer.generate("log.test/x").verifier.to_string()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "witness-key.pem").write_bytes((tmp_path / "w" / "witness-key.pem").read_bytes())
    (corrupt / "witness.db").write_bytes(b"not a database, not at all" * 10)
    for args, message in BAD_ARGUMENTS:
        filled = [a.format(dir=tmp_path, key=key, cosigner=cosigner) for a in args]
        result = _run(*filled)
        assert result.returncode == 1, (args, result.stdout)
        assert "error:" in result.stderr and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
