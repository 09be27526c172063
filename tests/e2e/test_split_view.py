"""Split views are caught: a ledger server and two real witness processes; then
a second server on a copy of the ledger's database (same key, same origin,
same witnesses) appends a different history. The witnesses refuse the fork,
so none of its checkpoints past the fork point reaches the quorum, and
ledger-verify requiring the quorum rejects it while the honest server
passes. A server on an older copy (a rollback) is refused the same way."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger_client.verify import main as verify_main
from tests.conftest import ORIGIN
from tests.e2e.witnessed import append, ledger_key, wait_for, witnessed_size, witnesses_env
from tests.servers import ServerProcess
from tests.witnesses import RunningWitness, start_witness

pytestmark = pytest.mark.slow
LEDGER = "talks"


def copy_ledger(data_dir: Path, to: Path) -> None:
    """The ledger's database (SQLite's online backup: consistent while it serves)
    and its signing key, as an operator who forks or restores would have them."""
    to.mkdir()
    shutil.copytree(data_dir / "keys", to / "keys")
    with (
        sqlite3.connect(data_dir / "ledger.db") as source,
        sqlite3.connect(to / "ledger.db") as target,
    ):
        source.backup(target)


def serve(data_dir: Path, witnesses: list[RunningWitness]) -> ServerProcess:
    return ServerProcess(
        database_url=f"sqlite:///{data_dir / 'ledger.db'}",
        data_dir=data_dir,
        env=witnesses_env([(w.url, w.verifier_key) for w in witnesses]),
    )


def verify(
    capsys: pytest.CaptureFixture[str], url: str, key: str, witnesses: list[RunningWitness]
) -> tuple[int, dict[str, Any]]:
    argv = ["server", url, "--ledger", LEDGER, "--key", key, "--quorum", "2"]
    for witness in witnesses:
        argv += ["--witness", witness.verifier_key]
    code = verify_main([*argv, "--witness-wait", "0.5", "--json"])
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, result


def errors(url: str) -> list[str]:
    body = httpx.get(f"{url}/v1/ledgers/{LEDGER}/witnesses", timeout=5).json()
    return [w["last_error"] or "" for w in body["witnesses"]]


@pytest.fixture
def witnesses(tmp_path: Path) -> Iterator[tuple[str, list[RunningWitness]]]:
    key = ledger_key(tmp_path / "honest")
    logs = {f"{ORIGIN}/{LEDGER}": [key]}
    started = [
        start_witness(tmp_path / f"w{i}", logs=logs, name=f"witness.test/w{i}") for i in (1, 2)
    ]
    yield key, started
    for witness in started:
        witness.stop()


def test_a_fork_and_a_rollback_never_reach_the_quorum(
    tmp_path: Path,
    witnesses: tuple[str, list[RunningWitness]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    key, both = witnesses
    honest_dir = tmp_path / "honest"
    honest = serve(honest_dir, both)
    servers = [honest]
    try:
        httpx.post(f"{honest.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
        append(honest.url, LEDGER, 5)
        wait_for(lambda: witnessed_size(honest.url, LEDGER) == 5, what="size 5 witnessed")
        copy_ledger(honest_dir, tmp_path / "old")
        append(honest.url, LEDGER, 3)
        wait_for(lambda: witnessed_size(honest.url, LEDGER) == 8, what="size 8 witnessed")
        copy_ledger(honest_dir, tmp_path / "fork")
        # The honest history goes on, and the witnesses cosign it first.
        append(honest.url, LEDGER, 3)
        wait_for(lambda: witnessed_size(honest.url, LEDGER) == 11, what="size 11 witnessed")

        # Both come up at once: a server's start is most of this test's time.
        with ThreadPoolExecutor(2) as pool:
            fork, old = pool.map(lambda name: serve(tmp_path / name, both), ["fork", "old"])
        servers += [fork, old]
        assert witnessed_size(fork.url, LEDGER) == 8  # the shared past, cosigned before
        # The fork's size 10 is smaller than the witnesses' 11: "you are behind what I saw".
        append(fork.url, LEDGER, 2, party="UA")
        wait_for(
            lambda: all("a fork or a rollback" in e for e in errors(fork.url)),
            what="both witnesses refusing the fork's size 10",
        )
        # Its size 14 is larger, but no proof from 11 can join two different trees.
        append(fork.url, LEDGER, 4, party="UA")
        wait_for(
            lambda: all(e.startswith("422") for e in errors(fork.url)),
            what="both witnesses refusing the fork's size 14",
        )
        assert witnessed_size(fork.url, LEDGER) == 8

        # A rollback: the server on the copy of size 5, appending records of its own.
        assert witnessed_size(old.url, LEDGER) == 5
        append(old.url, LEDGER, 2, party="UA")
        wait_for(
            lambda: all("a fork or a rollback" in e for e in errors(old.url)),
            what="both witnesses refusing the rollback",
        )
        assert witnessed_size(old.url, LEDGER) == 5

        # Meanwhile the honest server is witnessed as it grows.
        append(honest.url, LEDGER, 1)
        wait_for(lambda: witnessed_size(honest.url, LEDGER) == 12, what="size 12 witnessed")

        code, result = verify(capsys, fork.url, key, both)
        assert code == 1, result
        assert "records 9-14 are not witnessed" in result["reason"]
        code, result = verify(capsys, old.url, key, both)
        assert code == 1 and "records 6-7 are not witnessed" in result["reason"]
        code, result = verify(capsys, honest.url, key, both)
        assert code == 0, result
        assert result["witnessed"]["tree_size"] == 12 and result["to_seq"] == 12
        assert len(result["witnessed"]["cosigned_by"]) == 2
    finally:
        for server in servers:
            server.stop()
