"""API fuzzing: Schemathesis against a real server's own OpenAPI document.

A real ``ledger serve`` (real HTTP, authentication on) is fuzzed through the
Schemathesis command line, in positive mode (schema-valid requests: they must
be accepted) and negative mode (schema-violating requests: they must be
refused), with every check Schemathesis has. The run must end with zero
failures, zero errors and no 5xx; its JSON report gives the figures printed
at the end (``pytest -s`` shows them).

The CLI runs in a child process: it is Schemathesis's documented, stable
interface, and its Hypothesis engine and warnings stay out of this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.cosignature import Witness
from ledger.core.signing import Signer
from ledger.store.tables import checkpoint_cosignatures, ledgers
from tests.conftest import position
from tests.e2e.test_tokens_cli import create_token
from tests.servers import ServerProcess
from tests.tsa import LocalTsa, make_authority

pytestmark = pytest.mark.slow

LEDGER = "fuzz"
WITNESS = Witness.generate("witness.test/fuzz")
DESK = Signer.generate("ua-desk")
MAX_EXAMPLES = 12  # per operation and phase: about 25 s per mode on 2 cores

# Path parameters name data that exists, so requests reach the handlers rather
# than stopping at 404: always the seeded ledger (the coverage phase ignores
# dictionaries, and an unknown ledger is a plain 404 that tests/api covers), and
# usually an existing record and party, sometimes not, so those 404s are fuzzed.
#
# Positive data may still get 422 where validity depends on the ledger's state,
# which no JSON Schema can express: a seq, tree size or known_at beyond the
# current head; and, for appends, an occurred_at in the future, text that is not
# NFC, an integer >= 2^53 (all format §1 rules the event schemas cannot state), or a
# correction or retraction naming a record that does not exist yet; for desks, a
# verifier key that is not a key of the name given, or a token that does not
# exist; for documents, an empty body (schemathesis sends one for a binary
# body whatever its minLength) or bytes that do not start as their type's do.
# For those
# operations only, 422 joins the statuses positive data may get; anything else
# (400, 415, 5xx ...) still fails the check.
CONFIG = """
[dictionaries.seqs]
values = [1, 2, 3]

[dictionaries.parties]
values = ["US", "UA"]

[parameters]
"path.ledger" = "fuzz"
"path.seq" = { dictionary = "seqs", probability = 0.8 }
"path.party" = { dictionary = "parties", probability = 0.8 }
# An event stream stays open until its timeout: keep each one short.
"query.timeout" = 0.01

[[operations]]
include-name = [
    "POST /v1/ledgers/{ledger}/events",
    "GET /v1/ledgers/{ledger}/snapshot",
    "GET /v1/ledgers/{ledger}/parties/{party}",
    "GET /v1/ledgers/{ledger}/history",
    "GET /v1/ledgers/{ledger}/diff",
    "GET /v1/ledgers/{ledger}/proofs/inclusion",
    "GET /v1/ledgers/{ledger}/proofs/consistency",
    "GET /v1/ledgers/{ledger}/export",
    "GET /v1/ledgers/{ledger}/checkpoint/timestamp",
    "POST /v1/ledgers/{ledger}/authors",
    "DELETE /v1/ledgers/{ledger}/authors/{name}",
    "POST /v1/ledgers/{ledger}/documents",
]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "401", "403", "404", "409", "422", "429",
]
"""


def run_schemathesis(
    url: str, token: str, *, mode: str, workdir: Path
) -> tuple[dict[str, Any], str, float]:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    report = workdir / f"schemathesis-{mode}.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--mode",
        mode,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        # Derandomized (Hypothesis's derandomize, no example database): same cases every run.
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert report.exists(), output
    summary: dict[str, Any] = json.loads(report.read_text())
    assert result.returncode == 0, output
    return summary, output, elapsed


def seed_ledger(url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(f"{url}/v1/ledgers", json={"name": LEDGER}, headers=headers)
    assert created.status_code == 201, created.text
    events = [
        position(party="US", stance="oppose", occurred_at="2025-02-24"),
        position(party="UA", stance="support", occurred_at="2025-02-25"),
        position(party="US", stance="support", occurred_at="2025-02-28"),
    ]
    appended = httpx.post(f"{url}/v1/ledgers/{LEDGER}/events", json=events, headers=headers)
    assert appended.status_code == 201, appended.text
    # Record 4: a desk, so revoking one reaches the handler (the first revocation
    # succeeds, later ones conflict).
    desk = {"name": "ua-desk", "verifier_key": DESK.verifier.to_string()}
    registered = httpx.post(f"{url}/v1/ledgers/{LEDGER}/authors", json=desk, headers=headers)
    assert registered.status_code == 201, registered.text


def wait_for_timestamp(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/v1/ledgers/{LEDGER}/checkpoint/timestamp").status_code != 200:
        assert time.monotonic() < deadline, f"no checkpoint timestamp within {timeout} s"
        time.sleep(0.05)


def seed_cosignature(url: str, database_url: str) -> None:
    """A cosignature of the seeded checkpoint, stored as the collector would store
    one, so that ``/checkpoint/witnessed`` has a note to serve."""
    note = httpx.get(f"{url}/v1/ledgers/{LEDGER}/checkpoint", params={"size": 3}).text
    body = SignedCheckpoint.from_text(note).checkpoint.body()
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            ledger_id = sa.select(ledgers.c.id).where(ledgers.c.name == LEDGER).scalar_subquery()
            conn.execute(
                checkpoint_cosignatures.insert().values(
                    ledger_id=ledger_id,
                    tree_size=3,
                    witness=WITNESS.verifier.to_string(),
                    signed_at=1_800_000_000,
                    line=WITNESS.cosign(body, 1_800_000_000).to_line(),
                    received_at="2026-12-07T07:00:00.000000Z",
                )
            )
    finally:
        engine.dispose()


def test_schemathesis_finds_nothing(database_url: str, tmp_path: Path) -> None:
    token = create_token("fuzz", "admin", database_url=database_url, data_dir=tmp_path)
    # A real time-stamping authority, so the timestamp route has data to serve.
    tsa = LocalTsa(make_authority(tmp_path / "tsa"))
    # A witness nobody runs (port 9 is discard's): its one stored cosignature
    # makes a witnessed checkpoint, and submissions to it fail, off the requests' path.
    witnesses = json.dumps([{"url": "http://127.0.0.1:9", "key": WITNESS.verifier.to_string()}])
    server = ServerProcess(
        database_url=database_url,
        data_dir=tmp_path,
        env={
            "LEDGER_AUTH": "tokens",
            "LEDGER_RATE_LIMIT": "0",
            "LEDGER_WITNESSES": witnesses,
            "LEDGER_TSA_URL": tsa.url,
            "LEDGER_TSA_CERTS": str(tsa.authority.chain),
            "LEDGER_TSA_INTERVAL": "0.2",
        },
    )
    figures: list[str] = []
    try:
        seed_ledger(server.url, token)
        seed_cosignature(server.url, database_url)
        wait_for_timestamp(server.url)
        for mode in ("positive", "negative"):
            summary, output, elapsed = run_schemathesis(
                server.url, token, mode=mode, workdir=tmp_path
            )
            operations, cases = summary["operations"], summary["test_cases"]
            assert summary["complete"] and summary["stop_reason"] == "completed", output
            assert summary["failures"] == [] and summary["errors"] == [], output
            assert cases["with_failures"] == 0 and cases["errored"] == 0, output
            assert operations["tested"] == operations["total"] > 0, output
            # Path parameters reached data: no operation only ever answered 404.
            assert summary["warnings"]["missing_test_data"] == [], output
            figures.append(
                f"{mode}: {operations['tested']} operations, {cases['generated']} cases, "
                f"{elapsed:.1f} s"
            )
        head = httpx.get(f"{server.url}/v1/ledgers/{LEDGER}/head").json()
        assert head["size"] > 4, "positive appends were never accepted"
    finally:
        server.stop()
        tsa.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log and '"status":5' not in log, log[-5000:]
    assert token not in log
    print(f"\nschemathesis ({database_url.split(':', 1)[0]}): " + "; ".join(figures))
