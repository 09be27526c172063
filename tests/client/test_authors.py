"""A desk signs what it posts (format §1.4): ``ledger-client keygen``, a
signing ``Client``, and ``ledger-verify`` checking the signatures, against a
real server on each backend."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest

from ledger.core.signing import VerifierKey
from ledger_client import Client, ProblemError
from ledger_client.verify import verify_bundle_file, verify_server
from tests.conftest import position
from tests.servers import ServerProcess


def keygen(name: str, out: Path) -> str:
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ledger_client.cli import main; main()",
            "keygen",
            name,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stat().st_mode & 0o777 == 0o600
    return made.stdout.strip().splitlines()[-1]


@pytest.fixture
def desk_key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "ua-desk.pem"
    return path, keygen("ua-desk", path)


def register(server: ServerProcess, ledger: str, name: str, key: str) -> None:
    body = {"name": name, "verifier_key": key}
    httpx.post(f"{server.url}/v1/ledgers/{ledger}/authors", json=body).raise_for_status()


def test_a_signing_client_posts_what_the_verifier_then_checks(
    server: ServerProcess, ledger: str, log_key: str, desk_key: tuple[Path, str], tmp_path: Path
) -> None:
    pem, verifier_key = desk_key
    assert VerifierKey.from_string(verifier_key).name == "ua-desk"
    register(server, ledger, "ua-desk", verifier_key)
    events = [position(stance=s, occurred_at="2025-02-24") for s in ("oppose", "demand")]
    with (
        Client(server.url, trusted_keys=[log_key], author="ua-desk", author_key=pem) as desk,
        Client(server.url) as anyone,
    ):
        receipts = desk.append_many(ledger, events, verify=True)
        anyone.append(ledger, position(stance="offer"))
        stored = [desk.record(ledger, r.seq) for r in receipts]
    # The date was sent in the form the record keeps, so the signature covers it.
    assert [r.occurred_at for r in stored] == ["2025-02-24T00:00:00Z"] * 2
    assert all(r.author and r.author["name"] == "ua-desk" for r in stored)

    with httpx.Client(base_url=server.url) as http:
        live = verify_server(http, ledger, VerifierKey.from_string(log_key))
    assert live.valid, live.reason
    assert any("2 signed records checked" in c and "(ua-desk: 2)" in c for c in live.checks)

    bundle = tmp_path / "export.tar"
    bundle.write_bytes(httpx.get(f"{server.url}/v1/ledgers/{ledger}/export").content)
    with tarfile.open(bundle) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest["format"] == "ledger-export/3"
    offline = verify_bundle_file(bundle, VerifierKey.from_string(log_key))
    assert offline.valid, offline.reason
    assert any(
        "2 signed records checked" in c and "2 records unsigned" in c for c in offline.checks
    ), offline.checks


def test_a_desk_the_ledger_does_not_know_is_refused_with_a_problem(
    server: ServerProcess, ledger: str, desk_key: tuple[Path, str]
) -> None:
    pem, _ = desk_key
    with (
        Client(server.url, author="ua-desk", author_key=pem) as desk,
        pytest.raises(ProblemError) as refused,
    ):
        desk.append(ledger, position())
    assert refused.value.status == 403
    assert refused.value.field == "author"


def test_post_signs_each_line_and_a_rerun_skips_what_the_log_holds(
    server: ServerProcess, ledger: str, desk_key: tuple[Path, str], tmp_path: Path
) -> None:
    pem, verifier_key = desk_key
    register(server, ledger, "ua-desk", verifier_key)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(position(stance=s)) for s in ("oppose", "demand")))
    argv = [
        sys.executable,
        "-c",
        "from ledger_client.cli import main; main()",
        "post",
        ledger,
        str(events),
        "--url",
        server.url,
        "--author",
        "ua-desk",
        "--author-key",
        str(pem),
    ]
    for _ in range(2):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    items = httpx.get(f"{server.url}/v1/ledgers/{ledger}/events").json()["items"]
    signed = [item for item in items if "author" in item]
    assert len(signed) == 2 and "already in the log" in done.stderr
