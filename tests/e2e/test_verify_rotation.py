"""ledger-verify follows key rotations (format §3) from the key it was given.

An auditor holds the verifier key the server published before a rotation.
After ``ledger keys rotate`` and ``ledger keys retire OLD``, checkpoints and
export manifests are signed by the new key alone; the verifier must accept it
through the old key's endorsement in the ``key.rotated`` record it walks, and
refuse a rotation whose endorsement is not the old key's signature. Real
server process, ``ledger`` and ``ledger-verify`` as subprocesses.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ledger.core.canonical import canonical_bytes
from ledger.core.checkpoint import Checkpoint, sign
from ledger.core.hashing import leaf_hash, record_hash
from ledger.core.merkle import root_from_leaves
from ledger.core.signing import Signer
from tests.conftest import BACKENDS, backend_database, position
from tests.e2e.test_cli import run_ledger
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow
LEDGER = "audit"


@dataclass(frozen=True, slots=True)
class Rotated:
    server: ServerProcess
    old_key: str
    new_key: str
    rotated_seq: int
    data_dir: Path


def append(server: ServerProcess, count: int, stance: str = "oppose") -> None:
    events = [position(party="UA", stance=stance) for _ in range(count)]
    httpx.post(f"{server.url}/v1/ledgers/{LEDGER}/events", json=events).raise_for_status()


@contextmanager
def rotated_ledger(database_url: str, data_dir: Path) -> Iterator[Rotated]:
    """A ledger whose key was rotated and the old key retired, then appended to."""
    server = ServerProcess(database_url=database_url, data_dir=data_dir)
    try:
        httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        append(server, 4)
        (published,) = httpx.get(f"{server.url}/v1/keys").json()["items"]
        old_key = str(published["verifier_key"])
        done = run_ledger("keys", "rotate", database_url=database_url, data_dir=data_dir)
        assert done.returncode == 0, done.stderr
        rotated_seq = int(done.stdout.split(f"{LEDGER}: key.rotated at seq ")[1].split()[0])
        new_key = done.stdout.split("new key: ")[1].split()[0]
        old_id = old_key.split("+")[1]
        retired = run_ledger("keys", "retire", old_id, database_url=database_url, data_dir=data_dir)
        assert retired.returncode == 0, retired.stderr
        append(server, 3, stance="demand")
        yield Rotated(server, old_key, new_key, rotated_seq, data_dir)
    finally:
        server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def rotated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rotated]:
    """One rotated ledger per backend, shared by the tests that only read it or
    append to it (a rotation and a retirement cost two ``ledger`` processes)."""
    data_dir = tmp_path_factory.mktemp("rotated")
    with backend_database(request.param, data_dir) as url, rotated_ledger(url, data_dir) as made:
        yield made


def head_size(rotated: Rotated) -> int:
    return int(httpx.get(f"{rotated.server.url}/v1/ledgers/{LEDGER}/head").json()["size"])


def ledger_verify(*argv: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ledger_client.verify", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stdout + done.stderr
    return done


def latest_signers(rotated: Rotated) -> list[str]:
    note = httpx.get(f"{rotated.server.url}/v1/ledgers/{LEDGER}/checkpoint").text
    return [line.split()[1] for line in note.split("\n\n", 1)[1].splitlines()]


def test_the_server_mode_follows_a_rotation_from_the_old_key_alone(rotated: Rotated) -> None:
    old_name, old_id = rotated.old_key.split("+")[:2]
    new_id = rotated.new_key.split("+")[1]
    # The premise: the latest checkpoint carries no signature by the old key.
    assert latest_signers(rotated) == [rotated.new_key.split("+")[0]]
    assert len({old_id, new_id}) == 2

    args = ["server", rotated.server.url, "--ledger", LEDGER, "--key", rotated.old_key]
    done = ledger_verify(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    line = " ".join(done.stdout.split())
    assert line.startswith(f"VALID {LEDGER}: records 1-{head_size(rotated)}")
    assert (
        f"key rotation to {old_name}+{new_id} endorsed by {old_name}+{old_id} "
        f"(seq {rotated.rotated_seq})" in line
    )
    assert f"checkpoint signature by {old_name}+{new_id}" in line

    as_json = json.loads(ledger_verify(*args, "--json").stdout)
    assert as_json["valid"] is True and as_json["key_id"] == new_id


def test_a_state_file_signed_by_the_new_key_is_read_with_the_old_key(
    rotated: Rotated, tmp_path: Path
) -> None:
    state = tmp_path / "trusted.checkpoint"
    args = ["server", rotated.server.url, "--ledger", LEDGER, "--key", rotated.old_key]
    first = ledger_verify(*args, "--state", str(state))
    assert first.returncode == 0, first.stdout + first.stderr
    append(rotated.server, 2)
    again = ledger_verify(*args, "--state", str(state))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "consistency with the remembered checkpoint" in " ".join(again.stdout.split())


def test_the_bundle_mode_follows_a_rotation_from_the_old_key_alone(
    rotated: Rotated, tmp_path: Path
) -> None:
    bundle = tmp_path / "rotated.tar"
    bundle.write_bytes(httpx.get(f"{rotated.server.url}/v1/ledgers/{LEDGER}/export").content)
    done = ledger_verify("bundle", str(bundle), "--key", rotated.old_key)
    assert done.returncode == 0, done.stdout + done.stderr
    line = " ".join(done.stdout.split())
    old_name, old_id = rotated.old_key.split("+")[:2]
    new_id = rotated.new_key.split("+")[1]
    assert f"manifest signature by {old_name}+{new_id}" in line
    assert f"endorsed by {old_name}+{old_id} (seq {rotated.rotated_seq})" in line


def test_a_range_without_the_rotation_record_cannot_follow_it(
    rotated: Rotated, tmp_path: Path
) -> None:
    bundle = tmp_path / "tail.tar"
    url = f"{rotated.server.url}/v1/ledgers/{LEDGER}/export?from_seq={rotated.rotated_seq + 1}"
    bundle.write_bytes(httpx.get(url).content)
    done = ledger_verify("bundle", str(bundle), "--key", rotated.old_key)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "key.rotated" in " ".join(done.stdout.split())


# -- a rotation the old key did not endorse -----------------------------------------


def _members(bundle: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        out = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            out[member.name] = handle.read()
    return out


def _pack(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def forged_rotation(bundle: bytes, old_key: str, rotated_seq: int, endorser: Signer) -> bytes:
    """The bundle as an attacker holding only ``endorser`` rewrites it: the
    ``key.rotated`` record hands over to the attacker's key, endorsed by that
    key itself (not the old one), and every hash, root and signature after it
    is made again with the attacker's key, so that only the endorsement is false."""
    members = _members(bundle)
    manifest = json.loads(members["manifest.json"])
    attacker = endorser.verifier
    records = [json.loads(line) for line in members["records.jsonl"].splitlines()]
    lines: list[bytes] = []
    for record in records:
        if record["seq"] == rotated_seq:
            assert record["type"] == "key.rotated" and record["data"]["old_key"] == old_key
            new_key = attacker.to_string()
            signature = endorser.sign(new_key.encode())
            record["data"] = {
                "new_key": new_key,
                "old_key": old_key,
                "endorsement": base64.b64encode(signature).decode(),
            }
        if lines:
            record["prev"] = record_hash(lines[-1])
        lines.append(canonical_bytes(record))
    body = b"".join(line + b"\n" for line in lines)
    root = root_from_leaves([leaf_hash(line) for line in lines])
    manifest.update(
        records_sha256=hashlib.sha256(body).hexdigest(),
        head_hash=record_hash(lines[-1]),
        merkle_root=base64.b64encode(root).decode(),
        key_id=attacker.key_id_hex,
        key_name=attacker.name,
    )
    manifest_bytes = canonical_bytes(manifest)
    checkpoint = Checkpoint(
        origin=manifest["origin"],
        tree_size=manifest["tree_size"],
        root=root,
        head_hash=manifest["head_hash"],
    )
    return _pack(
        {
            "manifest.json": manifest_bytes,
            "manifest.sig": endorser.sign(manifest_bytes),
            "records.jsonl": body,
            "checkpoint": sign(checkpoint, [endorser]).to_text().encode(),
            "public_key.pem": attacker.public_pem(),
        }
    )


def test_a_rotation_the_old_key_did_not_endorse_is_refused(
    rotated: Rotated, tmp_path: Path
) -> None:
    genuine = httpx.get(f"{rotated.server.url}/v1/ledgers/{LEDGER}/export").content
    attacker = Signer.generate(rotated.old_key.split("+")[0])
    bundle = tmp_path / "forged.tar"
    bundle.write_bytes(forged_rotation(genuine, rotated.old_key, rotated.rotated_seq, attacker))
    done = ledger_verify("bundle", str(bundle), "--key", rotated.old_key, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["failure_seq"] == rotated.rotated_seq, result
    assert "endorsement" in result["reason"], result


def test_a_server_whose_rotation_record_was_edited_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    """The endorsement in the stored record swapped for a signature by another key."""
    with rotated_ledger(database_url, tmp_path) as rotated:
        _refuses_an_edited_rotation(rotated, database_url)


def _refuses_an_edited_rotation(rotated: Rotated, database_url: str) -> None:
    impostor = Signer.generate(rotated.old_key.split("+")[0])
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text("DROP TRIGGER records_no_update"))
            else:
                conn.execute(sa.text("DROP TRIGGER records_append_only ON records"))
            row = conn.execute(
                sa.text("SELECT canonical FROM records WHERE seq = :seq"),
                {"seq": rotated.rotated_seq},
            ).one()
            record = json.loads(bytes(row.canonical))
            forged = impostor.sign(record["data"]["new_key"].encode())
            record["data"]["endorsement"] = base64.b64encode(forged).decode()
            conn.execute(
                sa.text("UPDATE records SET canonical = :c WHERE seq = :seq"),
                {"c": canonical_bytes(record), "seq": rotated.rotated_seq},
            )
    finally:
        engine.dispose()
    args = ["server", rotated.server.url, "--ledger", LEDGER, "--key", rotated.old_key]
    done = ledger_verify(*args, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["failure_seq"] == rotated.rotated_seq, result
    assert "endorsement" in result["reason"], result
