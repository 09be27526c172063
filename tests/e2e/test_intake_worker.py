"""The intake worker of a real server: it parses large batches, and it ends
with the server, even one killed outright (no process is left behind)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx

from tests.conftest import position
from tests.e2e.checks import SERVER_ENV
from tests.servers import ServerProcess

EVENTS = "/v1/ledgers/talks/events"


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_servers_intake_worker_ends_with_it(tmp_path: Path) -> None:
    server = ServerProcess(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}", data_dir=tmp_path, env=SERVER_ENV
    )
    try:
        assert httpx.post(f"{server.url}/v1/ledgers", json={"name": "talks"}).status_code == 201
        batch = [position(topic=f"topic-{n % 9}", stance="demand") for n in range(400)]
        body = json.dumps(batch).encode()
        assert len(body) > 64 * 1024
        deadline = time.monotonic() + 60
        helpers: set[int] = set()
        # The first large body starts the worker; later ones are parsed by it.
        while time.monotonic() < deadline:
            answer = httpx.post(
                f"{server.url}{EVENTS}",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            assert answer.status_code == 201, answer.text
            helpers = descendants(server.pid)
            if len(helpers) >= 2:  # the forkserver and the worker it forked, at least
                break
            time.sleep(0.2)
        assert len(helpers) >= 2, "no intake worker was started"
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(pid) for pid in helpers):
            time.sleep(0.1)
        assert not [pid for pid in helpers if alive(pid)]
    finally:
        server.stop()
