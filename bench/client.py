"""The Python client's cost: ``Client.append_many`` beside raw httpx posting
the same batches to the same server, and what ``verify=True`` adds.

One real ``ledger serve`` process on a fresh SQLite ledger (the client's own
work does not depend on the database). In each round, taken in turn so a
slow spell of the machine falls on all three:

* raw httpx: ``httpx.Client.post(…, json=batch)`` of ``BATCH``-event batches,
  a fresh Idempotency-Key each, the receipts parsed — what a careful script
  does by hand — with each event's id drawn beforehand, as the client draws
  one, so the server does the same work for both;
* ``Client.append_many`` of the same batches (ids drawn, canonical bodies,
  receipts checked against the events sent, retries armed);
* ``Client.append_many(…, verify=True)``: each record also proven included in
  a checkpoint signed by the trusted key, consistent with the one before
  (per batch: a checkpoint, a consistency proof, a page of records and the
  inclusion proofs of the first and last record);
* ``Client.append_many`` as a registered desk (format §1.4): each event
  signed by the client and its signature checked by the server under the
  ledger's lock.

Figures (events/s, best round): the client beside raw httpx (target: at
least 0.9), and the verified and the signing client beside the plain one
(reported: the price of the proofs, and of the signatures).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.appends import position_event
from bench.harness import Figure, Report, console
from ledger.core.signing import VerifierKey
from ledger_client import Client
from ledger_client.events import new_event_id
from tests.servers import ServerProcess

LEDGER = "bench"
BATCH = 500
DESK = "bench-desk"


def _desk_key(directory: Path, server: ServerProcess) -> Path:
    """A desk's key, written where the client reads it, and registered in the ledger."""
    private = Ed25519PrivateKey.generate()
    path = directory / "desk.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    verifier = VerifierKey.from_public_key(DESK, private.public_key()).to_string()
    httpx.post(
        f"{server.url}/v1/ledgers/{LEDGER}/authors",
        json={"name": DESK, "verifier_key": verifier},
    ).raise_for_status()
    return path


def _batches(count: int, start: int, *, ids: bool = False) -> list[list[dict[str, object]]]:
    """``count`` batches; with ``ids``, each event carries the id the client would draw."""
    return [
        [
            {**position_event(start + n * BATCH + i), **({"id": new_event_id()} if ids else {})}
            for i in range(BATCH)
        ]
        for n in range(count)
    ]


def _raw(server: ServerProcess, batches: list[list[dict[str, object]]]) -> float:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        started = time.perf_counter()
        for batch in batches:
            response = http.post(
                f"/v1/ledgers/{LEDGER}/events",
                json=batch,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            response.raise_for_status()
            assert len(response.json()) == len(batch)
        return sum(map(len, batches)) / (time.perf_counter() - started)


def _client(
    server: ServerProcess,
    key: str,
    batches: list[list[dict[str, object]]],
    *,
    verify: bool,
    desk: Path | None = None,
) -> float:
    author = None if desk is None else DESK
    with Client(server.url, trusted_keys=[key], author=author, author_key=desk) as client:
        client.checkpoint(LEDGER)  # the first trusted checkpoint, outside the timing
        started = time.perf_counter()
        for batch in batches:
            receipts = client.append_many(LEDGER, batch, verify=verify)
            assert len(receipts) == len(batch)
        return sum(map(len, batches)) / (time.perf_counter() - started)


def run(report: Report, *, rounds: int = 3, batches: int = 20, verified_batches: int = 2) -> None:
    console.rule("client")
    with tempfile.TemporaryDirectory(prefix="ledger-bench-client-") as tmp:
        directory = Path(tmp)
        server = ServerProcess(
            database_url=f"sqlite:///{directory / 'client.db'}", data_dir=directory
        )
        try:
            httpx.post(f"{server.url}/v1/ledgers", json={"name": LEDGER}).raise_for_status()
            key = str(httpx.get(f"{server.url}/v1/keys").json()["items"][0]["verifier_key"])
            desk = _desk_key(directory, server)
            _raw(server, _batches(2, 0))  # warm both sides up
            raw: list[float] = []
            plain: list[float] = []
            verified: list[float] = []
            signing: list[float] = []
            for n in range(rounds):
                start = (n + 1) * 1_000_000
                raw.append(_raw(server, _batches(batches, start, ids=True)))
                plain.append(_client(server, key, _batches(batches, start + 100_000), verify=False))
                verified.append(
                    _client(server, key, _batches(verified_batches, start + 200_000), verify=True)
                )
                signing.append(
                    _client(
                        server, key, _batches(batches, start + 300_000), verify=False, desk=desk
                    )
                )
                console.print(
                    f"  round {n + 1}: raw {raw[-1]:,.0f}, client {plain[-1]:,.0f}, "
                    f"verified {verified[-1]:,.0f}, signing {signing[-1]:,.0f} events/s"
                )
        finally:
            server.stop()
    report.add(
        Figure(
            "client",
            f"Client.append_many, batches of {BATCH}",
            max(plain),
            "events/s",
            "raw httpx, same batches",
            max(raw),
            True,
            ">= 0.9x",
        )
    )
    report.add(
        Figure(
            "client",
            f"Client.append_many verify=True, batches of {BATCH}",
            max(verified),
            "events/s",
            "Client.append_many",
            max(plain),
            True,
            "reported",
        )
    )
    report.add(
        Figure(
            "client",
            f"Client.append_many signed by a desk, batches of {BATCH}",
            max(signing),
            "events/s",
            "Client.append_many",
            max(plain),
            True,
            "reported",
        )
    )
