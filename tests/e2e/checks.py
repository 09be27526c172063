"""End-to-end audit of a live ledger over HTTP, trusting only ``ledger.core``.

Shared by the crash and database-fault tests: both must show, after the
fault, that what the server acknowledged is there, exactly once, under a
chain, a Merkle tree and a signed checkpoint that all agree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger.core import checkpoint as notes
from ledger.core.chain import ChainVerifier
from ledger.core.hashing import leaf_hash
from ledger.core.merkle import root_from_leaves
from ledger.core.signing import VerifierKey
from tests.conftest import position

__all__ = [
    "SERVER_ENV",
    "Attempt",
    "LedgerView",
    "check_acknowledged",
    "new_attempt",
    "post_attempt",
    "presence",
    "read_ledger",
    "trusted_keys",
    "verify_checkpoint",
]

# These tests are about storage, not principals or throttling (tested on their
# own): no authentication, and no rate limit on 16 writers from one address.
SERVER_ENV = {"LEDGER_AUTH": "off", "LEDGER_RATE_LIMIT": "0"}


@dataclass
class Attempt:
    """One append as a client sent it, and what it got back."""

    key: str
    body: dict[str, Any] | list[dict[str, Any]]
    ids: list[str]
    receipts: list[dict[str, Any]] | None = None  # set once acknowledged (201 or 200)
    statuses: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the detail of each 503

    @property
    def is_batch(self) -> bool:
        return isinstance(self.body, list)


def new_attempt(tag: str, batch_size: int) -> Attempt:
    """Single event when ``batch_size`` is 0, else a batch; client-chosen ids."""
    events = []
    for n in range(max(batch_size, 1)):
        event = position(id=str(uuid.uuid4()))
        event["data"] = {"stance": "oppose", "summary": f"{tag} #{n}"}
        events.append(event)
    body: dict[str, Any] | list[dict[str, Any]] = events if batch_size else events[0]
    return Attempt(key=tag, body=body, ids=[str(e["id"]) for e in events])


def post_attempt(http: httpx.Client, ledger: str, attempt: Attempt) -> httpx.Response:
    response = http.post(
        f"/v1/ledgers/{ledger}/events",
        json=attempt.body,
        headers={"Idempotency-Key": attempt.key},
    )
    attempt.statuses.append(response.status_code)
    if response.status_code == 503:
        attempt.problems.append(str(response.json().get("detail")))
    if response.status_code in (200, 201):
        payload = response.json()
        receipts = payload if attempt.is_batch else [payload]
        assert [r["id"] for r in receipts] == attempt.ids, (attempt.key, receipts)
        if attempt.receipts is not None:
            # An acknowledged append replays its original receipts, never new ones.
            assert response.status_code == 200, (attempt.key, response.status_code)
            assert receipts == attempt.receipts, (attempt.key, receipts, attempt.receipts)
        attempt.receipts = receipts
    return response


@dataclass
class LedgerView:
    """Every record of a ledger, read once and verified end to end."""

    lines: list[bytes]
    seq_of_id: dict[str, int]
    hashes: list[str]  # record hash of seq n at index n - 1
    head_hash: str
    root: bytes

    @property
    def size(self) -> int:
        return len(self.lines)


def read_ledger(http: httpx.Client, ledger: str) -> LedgerView:
    """Read all records as NDJSON; check the chain, id uniqueness and the Merkle root."""
    response = http.get(f"/v1/ledgers/{ledger}/events", headers={"Accept": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    lines = response.content.splitlines()
    verifier = ChainVerifier(ledger=ledger)
    seq_of_id: dict[str, int] = {}
    hashes: list[str] = []
    for line in lines:
        record = verifier.add_line(line)  # raises on any break in the chain
        assert record.id not in seq_of_id, (
            f"id {record.id} at seq {seq_of_id[record.id]} and {record.seq}"
        )
        seq_of_id[record.id] = record.seq
        hashes.append(verifier.head_hash)
    root = root_from_leaves([leaf_hash(line) for line in lines])
    return LedgerView(
        lines=lines, seq_of_id=seq_of_id, hashes=hashes, head_hash=verifier.head_hash, root=root
    )


def trusted_keys(http: httpx.Client) -> list[VerifierKey]:
    response = http.get("/v1/keys")
    assert response.status_code == 200, response.text
    return [VerifierKey.from_string(item["verifier_key"]) for item in response.json()["items"]]


def verify_checkpoint(http: httpx.Client, ledger: str, text: str) -> notes.Checkpoint:
    """A served checkpoint, its signature checked against the served keys."""
    note = notes.verify(text, trusted_keys(http))
    assert note.checkpoint.origin.endswith(f"/{ledger}"), note.checkpoint.origin
    return note.checkpoint


def check_acknowledged(view: LedgerView, attempt: Attempt) -> None:
    """Each acknowledged record is present at its receipt's seq with its receipt's hash."""
    assert attempt.receipts is not None
    for receipt in attempt.receipts:
        seq = view.seq_of_id.get(receipt["id"])
        assert seq is not None, f"acknowledged {receipt} is missing"
        assert seq == receipt["seq"], f"acknowledged {receipt} moved to seq {seq}"
        assert view.hashes[seq - 1] == receipt["hash"], receipt


def presence(view: LedgerView, attempt: Attempt) -> bool:
    """Whether the attempt's events are present; a batch must be whole and contiguous."""
    seqs = [view.seq_of_id.get(event_id) for event_id in attempt.ids]
    present = [s for s in seqs if s is not None]
    assert len(present) in (0, len(seqs)), f"batch {attempt.key} is partly present: {seqs}"
    if present:
        assert present == list(range(present[0], present[0] + len(present))), (attempt.key, seqs)
    return bool(present)
