"""ledger-verify against a real server, before and after tampering the database."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ledger.core.signing import Signer
from ledger_client.verify import main as verify_main
from tests.conftest import BACKENDS, backend_server, position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow
LEDGER = "audit"


STANCES = ["oppose", "demand", "offer", "reject", "support"]


@dataclass(frozen=True, slots=True)
class Served:
    """A ledger on a running server, and where that server keeps its data."""

    process: ServerProcess
    database_url: str
    data_dir: Path
    ledger: str = LEDGER

    @property
    def url(self) -> str:
        return self.process.url

    def stop(self) -> None:
        self.process.stop()


def create(served: Served, count: int) -> Served:
    httpx.post(f"{served.url}/v1/ledgers", json={"name": served.ledger}).raise_for_status()
    append(served, count)
    return served


def start(database_url: str, data_dir: Path, count: int) -> Served:
    process = ServerProcess(database_url=database_url, data_dir=data_dir)
    return create(Served(process, database_url, data_dir), count)


def append(served: Served, count: int, *, party: str = "US") -> None:
    events = [position(party=party, stance=STANCES[n % len(STANCES)]) for n in range(count)]
    url = f"{served.url}/v1/ledgers/{served.ledger}/events"
    httpx.post(url, json=events).raise_for_status()


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One server per backend for the module: each test gets a ledger of its own on it."""
    data_dir = tmp_path_factory.mktemp("verify-client")
    with backend_server(request.param, data_dir) as (process, url):
        yield Served(process, url, data_dir)


@pytest.fixture
def server(shared: Served) -> Served:
    """A new ledger of 10 records on the module's server."""
    return create(replace(shared, ledger=f"audit-{uuid.uuid4().hex[:12]}"), 10)


def server_key(served: Served) -> str:
    """The verifier key (an auditor gets it out of band; the test asks the server once)."""
    items = httpx.get(f"{served.url}/v1/keys").json()["items"]
    return str(items[0]["verifier_key"])


def run_verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = verify_main([*argv, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, json.loads(captured.out)


def verify(
    served: Served, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, object]]:
    key = server_key(served)
    return run_verify(capsys, "server", served.url, "--ledger", served.ledger, "--key", key, *extra)


def tamper(served: Served, seq: int, old: bytes, new: bytes) -> None:
    """What an attacker with database access does: drop the guard, edit a record."""
    engine = sa.create_engine(served.database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER IF EXISTS records_no_update"))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS records_append_only ON records"))
        where = "seq = :seq AND ledger_id = (SELECT id FROM ledgers WHERE name = :ledger)"
        found = {"seq": seq, "ledger": served.ledger}
        row = conn.execute(sa.text(f"SELECT canonical FROM records WHERE {where}"), found).one()
        edited = bytes(row.canonical).replace(old, new)
        assert edited != bytes(row.canonical)
        conn.execute(
            sa.text(f"UPDATE records SET canonical = :c WHERE {where}"), {**found, "c": edited}
        )
    engine.dispose()


def test_an_untouched_ledger_verifies(server: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = verify(server, capsys)
    assert code == 0 and result["valid"] is True and result["checked"] == 10


def test_an_edited_middle_record_is_caught_at_the_next_link(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(server, 5, b'"stance":"support"', b'"stance":"oppose"')
    code, result = verify(server, capsys)
    assert code == 1 and result["valid"] is False
    # Record 5 still parses; its hash no longer links to record 6, and the blame
    # rule names the record whose hash changed.
    assert result["seq"] == 5


def test_an_edited_last_record_is_caught_by_the_stated_head(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(server, 10, b'"stance":"support"', b'"stance":"demand"')
    code, result = verify(server, capsys)
    assert code == 1 and result["seq"] == 10


def test_a_non_canonical_record_is_named(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(server, 3, b'"seq":3', b'"seq": 3')
    code, result = verify(server, capsys)
    assert code == 1 and result["seq"] == 3 and "canonical" in str(result["reason"])


def test_an_unreachable_server_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    key = Signer.generate("ledger.test").verifier.to_string()
    argv = ["server", "http://127.0.0.1:9", "--ledger", LEDGER, "--timeout", "2", "--key", key]
    code = verify_main(argv)
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_key_that_signed_nothing_here_is_invalid(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Signer.generate("ledger.test").verifier.to_string()
    code, result = run_verify(capsys, "server", server.url, "--ledger", server.ledger, "--key", key)
    assert code == 1 and "trusted key" in str(result["reason"])


# -- snapshots (format §6) -----------------------------------------------------------


def fetch_snapshot(server: Served, path: Path, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/ledgers/{server.ledger}/snapshot", params=params)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    path.write_text(json.dumps(document))
    return document


def test_a_served_snapshot_is_recomputed_and_accepted(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latest, older = tmp_path / "latest.json", tmp_path / "older.json"
    fetch_snapshot(server, latest)
    fetch_snapshot(server, older, known_at="6", as_of="2025-02-24")
    append(server, 3, party="UA")  # the ledger moves on; the snapshots stay checkable
    for path in (latest, older):
        code, result = verify(server, capsys, "--snapshot", str(path))
        assert code == 0, result


@pytest.mark.parametrize("member", ["state", "merkle_root", "signature"])
def test_an_edited_snapshot_is_refused(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str], member: str
) -> None:
    path = tmp_path / "snapshot.json"
    document = fetch_snapshot(server, path)
    if member == "state":
        document["state"]["US"]["security-guarantees"]["stance"] = "undecided"
    elif member == "merkle_root":
        document["merkle_root"] = base64.b64encode(bytes(32)).decode()
    else:
        document["signature"] = base64.b64encode(bytes(64)).decode()
    path.write_text(json.dumps(document))
    code, result = verify(server, capsys, "--snapshot", str(path))
    assert code == 1 and "snapshot" in str(result["reason"])


def test_a_snapshot_whose_state_is_re_signed_but_false_names_the_seq(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.core.positions import sign_snapshot
    from ledger.keyring import load_private

    path = tmp_path / "snapshot.json"
    document = fetch_snapshot(server, path)
    cell = document["state"]["US"]["security-guarantees"]
    cell["summary"] = "a summary the records never held"
    signer = Signer(
        name=server_key(server).split("+")[0],
        private_key=load_private(next((server.data_dir / "keys").glob("*.pem"))),
    )
    path.write_text(json.dumps(sign_snapshot(document, signer)))
    code, result = verify(server, capsys, "--snapshot", str(path))
    assert code == 1 and result["seq"] == cell["seq"] and "state" in str(result["reason"])


# -- the remembered checkpoint (format §5) ------------------------------------


def test_the_state_file_round_trips_and_advances(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state" / "checkpoint.txt"
    state.parent.mkdir()
    code, result = verify(server, capsys, "--state", str(state))
    assert code == 0, result
    assert state.read_text().split("\n")[1] == "10"
    append(server, 7)
    code, result = verify(server, capsys, "--state", str(state))
    assert code == 0 and result["to_seq"] == 17
    checkpoint = httpx.get(f"{server.url}/v1/ledgers/{server.ledger}/checkpoint").text
    assert state.read_text() == checkpoint
    assert [p.name for p in state.parent.iterdir()] == ["checkpoint.txt"]  # no temp files left


def test_a_failed_run_leaves_the_state_file_alone(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.txt"
    assert verify(server, capsys, "--state", str(state))[0] == 0
    remembered = state.read_text()
    append(server, 2)
    tamper(server, 4, b'"stance":"reject"', b'"stance":"support"')
    code, result = verify(server, capsys, "--state", str(state))
    assert code == 1 and result["seq"] == 4
    # Record 4 is a leaf of a subtree the server hashes from the records (it
    # stores only nodes over 16 leaves and more), so the edit also changes the
    # tree it proves: the report says both.
    assert "not an extension of the remembered 10" in str(result["reason"])
    assert state.read_text() == remembered


def test_an_unreadable_state_file_is_a_usage_error(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.txt"
    state.write_text("not a checkpoint\n")
    code, result = verify(server, capsys, "--state", str(state))
    assert code == 2 and "state file" in str(result["error"])


def twin(tmp_path: Path, name: str, original: Path, count: int, party: str) -> Served:
    """Another server with the same ledger name and signing key but its own history."""
    data_dir = tmp_path / name
    shutil.copytree(original / "keys", data_dir / "keys")
    url = f"sqlite:///{data_dir / 'ledger.db'}"
    served = Served(ServerProcess(database_url=url, data_dir=data_dir), url, data_dir)
    httpx.post(f"{served.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
    append(served, count, party=party)
    return served


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_state_from_a_longer_history_is_a_rollback(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.txt"
    longer = start(database_url, tmp_path, 20)
    try:
        assert verify(longer, capsys, "--state", str(state))[0] == 0
    finally:
        longer.stop()
    shorter = twin(tmp_path, "shorter", tmp_path, 10, "US")
    try:
        code, result = verify(shorter, capsys, "--state", str(state))
    finally:
        shorter.stop()
    assert code == 1 and "rollback" in str(result["reason"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_history_that_does_not_extend_the_state_is_a_fork(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.txt"
    original = start(database_url, tmp_path, 10)
    try:
        assert verify(original, capsys, "--state", str(state))[0] == 0
    finally:
        original.stop()
    forked = twin(tmp_path, "forked", tmp_path, 15, "UA")
    try:
        code, result = verify(forked, capsys, "--state", str(state))
    finally:
        forked.stop()
    assert code == 1 and "fork" in str(result["reason"])


def test_the_console_script_verifies_a_server_without_a_traceback(server: Served) -> None:
    script = Path(sys.executable).parent / "ledger-verify"
    argv = [
        str(script),
        "server",
        server.url,
        "--ledger",
        server.ledger,
        "--key",
        server_key(server),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "VALID" in done.stdout
    assert "Traceback" not in done.stderr
    done = subprocess.run([*argv[:-1], "garbage"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_the_client_imports_only_the_core_httpx_cryptography_and_rich() -> None:
    probe = (
        "import sys, ledger_client.verify\n"
        "bad = {'fastapi', 'sqlalchemy', 'starlette', 'jsonschema', 'pydantic', 'typer'}\n"
        "print(sorted(bad & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- what the success line says was checked ------------------------------------------


def verify_line(server: Served, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    """The human-readable verdict, as one line whatever the terminal's width."""
    argv = ["server", server.url, "--ledger", server.ledger, "--key", server_key(server), *extra]
    code = verify_main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    return " ".join(captured.out.split())


def test_the_success_line_names_the_checks_of_a_plain_run(
    server: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    line = verify_line(server, capsys)
    key = server_key(server)
    signer = "+".join(key.split("+")[:2])
    assert line.startswith(f"VALID {server.ledger}: records 1-10 (10 checked); checked: ")
    unsigned = "author signatures: 0 signed records checked against the keys the log registered"
    assert f"hash chain, {unsigned} before them; 10 records unsigned, " in line, line
    assert f"Merkle root recomputed, checkpoint signature by {signer};" in line
    for not_done in ("snapshot", "remembered", "consistency", "rotation"):
        assert not_done not in line, line
    code, result = verify(server, capsys)
    assert code == 0, result
    assert result["checks"] == [
        "hash chain",
        f"{unsigned} before them; 10 records unsigned",
        "Merkle root recomputed",
        f"checkpoint signature by {signer}",
    ]


def test_the_success_line_names_the_consistency_check_only_when_made(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.txt"
    first = verify_line(server, capsys, "--state", str(state))
    assert "consistency" not in first
    assert f"no remembered checkpoint yet: this one (tree size 10) saved to {state}" in first
    append(server, 2)
    second = verify_line(server, capsys, "--state", str(state))
    assert "consistency with the remembered checkpoint (tree size 10)" in second
    assert "no remembered checkpoint" not in second


def test_the_success_line_names_the_snapshot_recomputed(
    server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "snapshot.json"
    fetch_snapshot(server, path, known_at="6")
    line = verify_line(server, capsys, "--snapshot", str(path))
    assert "snapshot recomputed (known_at 6)" in line
    assert "consistency" not in line
