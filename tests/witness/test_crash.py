"""A witness killed (SIGKILL) in the middle of concurrent add-checkpoint requests.

Clients race a growing log and a fork of it at the witness; it is killed
while they run and restarted on the same directory. Whatever was answered
before the kill must hold after it: no two roots cosigned for one size,
every cosignature consistent with the log, the stored checkpoint one the
witness cosigned and no smaller than any size a client got a cosignature
for, and the fork still refused.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ledger.core.cosignature import Cosignature
from ledger.core.witnessing import CheckpointNote, parse_cosignature_lines, parse_size_body
from tests.witnesses import RunningWitness, TestLog, origin_hash, start_witness

pytestmark = pytest.mark.slow

LOG_SIZE = 300
CLIENTS = 6
FORK_CLIENTS = 2


@dataclass
class Observed:
    """What the clients saw: each cosignature answered, by (size, root)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cosigned: list[tuple[int, bytes, Cosignature]] = field(default_factory=list)
    fork_cosigned: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    latest_seen: int = 1
    requests: int = 0


def _client(witness: RunningWitness, log: TestLog, observed: Observed, seed: int) -> None:
    """Submit checkpoints of random sizes until the witness is gone."""
    chooser = random.Random(seed)
    with httpx.Client(base_url=witness.url, timeout=5) as http:
        while True:
            old = observed.latest_seen
            size = chooser.randint(old, min(old + 20, LOG_SIZE))
            try:
                response = http.post("/add-checkpoint", content=log.request(old, size))
            except httpx.TransportError:
                return
            with observed.lock:
                observed.requests += 1
                if response.status_code == 200:
                    (cosignature,) = parse_cosignature_lines(response.content)
                    if log.fork == "leaf":
                        observed.cosigned.append((size, log.root(size), cosignature))
                    else:
                        observed.fork_cosigned.append(size)
                    observed.latest_seen = max(observed.latest_seen, size)
                elif response.status_code == 409:
                    observed.latest_seen = max(
                        observed.latest_seen, parse_size_body(response.content)
                    )
                elif response.status_code != 422 or log.fork == "leaf":
                    observed.unexpected.append(f"{response.status_code} {response.text}")


@pytest.fixture
def witness_and_logs(tmp_path: Path) -> Iterator[tuple[RunningWitness, TestLog, TestLog]]:
    log = TestLog()
    log.grow(LOG_SIZE)
    fork = TestLog(origin=log.origin, signer=log.signer, fork="fork")
    fork.grow(LOG_SIZE)
    witness = start_witness(tmp_path / "w", logs={log.origin: [log.verifier_key]})
    yield witness, log, fork
    witness.stop()


def test_sigkill_mid_requests_never_leaves_an_inconsistent_cosignature(
    witness_and_logs: tuple[RunningWitness, TestLog, TestLog],
) -> None:
    witness, log, fork = witness_and_logs
    # The log's first checkpoint is cosigned before the race, so the fork is the fork.
    assert httpx.post(f"{witness.url}/add-checkpoint", content=log.request(0, 1)).status_code == 200
    observed = Observed()
    threads = [
        threading.Thread(target=_client, args=(witness, log, observed, n)) for n in range(CLIENTS)
    ] + [
        threading.Thread(target=_client, args=(witness, fork, observed, 100 + n))
        for n in range(FORK_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with observed.lock:
            if len(observed.cosigned) >= 30:
                break
        time.sleep(0.01)
    witness.kill()
    for thread in threads:
        thread.join(timeout=10)
    assert observed.cosigned, "no cosignature was answered before the kill"
    assert observed.fork_cosigned == []
    assert observed.unexpected == []

    # Every cosignature answered is the witness's over the log's checkpoint of that size.
    by_size: dict[int, bytes] = {}
    for size, root, cosignature in observed.cosigned:
        assert by_size.setdefault(size, root) == root, f"two roots cosigned for size {size}"
        witness.cosigner.verify(cosignature, log.body(size))

    witness.restart()
    with httpx.Client(base_url=witness.url, timeout=5) as http:
        stored = http.get(f"/{origin_hash(log.origin)}/checkpoint")
        assert stored.status_code == 200
        note = CheckpointNote.parse(stored.text)
        # A checkpoint of the log, cosigned by the witness, never behind an answer.
        assert note.root == log.root(note.size)
        assert note.size >= max(by_size)
        witness.cosigner.verify(Cosignature.from_note_signature(note.signatures[-1]), note.body)

        # The fork is still refused, at the stored size and beyond it.
        assert http.post("/add-checkpoint", content=fork.request(note.size)).status_code == 422
        # The log goes on from where the witness stood.
        wrong_old = http.post("/add-checkpoint", content=log.request(0))
        assert wrong_old.status_code == 409
        assert parse_size_body(wrong_old.content) == note.size
        assert http.post("/add-checkpoint", content=log.request(note.size)).status_code == 200
