"""``ledger-client post`` and ``tail`` as a shell user runs them, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import position
from tests.servers import ServerProcess

pytestmark = pytest.mark.slow


def ledger_client(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from ledger_client.cli import main; main()", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def write_events(path: Path, stances: list[str]) -> None:
    lines = [
        json.dumps(position(stance=s, occurred_at=f"2025-02-{n + 1:02d}"))
        for n, s in enumerate(stances)
    ]
    path.write_text("\n".join(lines) + "\n")


def stances_in(server: ServerProcess, ledger: str) -> list[str]:
    items = httpx.get(f"{server.url}/v1/ledgers/{ledger}/events", params={"limit": 1000}).json()[
        "items"
    ]
    return [item["data"]["stance"] for item in items]


def test_post_is_verified_and_a_rerun_posts_only_what_is_new(
    server: ServerProcess, ledger: str, log_key: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, ["oppose", "demand", "offer"])
    options = ["--url", server.url, "--key", log_key, "--state", str(tmp_path / "state.json")]
    first = ledger_client("post", ledger, str(events), "--verify", *options)
    assert first.returncode == 0, first.stderr
    assert "posted 3 event(s): seq 1-3, each proven in the checkpoint of size 3" in first.stderr

    write_events(events, ["oppose", "demand", "offer", "reject"])
    again = ledger_client("post", ledger, str(events), "--verify", *options)
    assert again.returncode == 0, again.stderr
    assert "3 event(s) already in the log: skipped" in again.stderr
    assert "posted 1 event(s): seq 4-4" in again.stderr
    assert stances_in(server, ledger) == ["oppose", "demand", "offer", "reject"]


def test_post_reports_a_refused_event_and_a_bad_line(
    server: ServerProcess, ledger: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, ["oppose", "shrug"])
    refused = ledger_client("post", ledger, str(events), "--url", server.url)
    assert refused.returncode == 3 and "[1].data.stance" in refused.stderr
    events.write_text('{"type": "position.stated"\n')
    bad = ledger_client("post", ledger, str(events), "--url", server.url)
    assert bad.returncode == 2 and "line 1 is not JSON" in bad.stderr
    assert "Traceback" not in refused.stderr + bad.stderr


def test_tail_prints_each_record_as_it_is_appended(server: ServerProcess, ledger: str) -> None:
    httpx.post(f"{server.url}/v1/ledgers/{ledger}/events", json=position()).raise_for_status()
    tail = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ledger_client.cli import main; main()",
            "tail",
            ledger,
            "--url",
            server.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    with tail:
        try:
            assert tail.stdout is not None
            first = json.loads(tail.stdout.readline())
            time.sleep(0.2)
            httpx.post(
                f"{server.url}/v1/ledgers/{ledger}/events", json=position(stance="demand")
            ).raise_for_status()
            second = json.loads(tail.stdout.readline())
        finally:
            tail.kill()
    assert (first["seq"], second["seq"], second["data"]["stance"]) == (1, 2, "demand")
