"""What each client method asks the server and checks, written once for both clients.

An operation is a generator: it yields the ``Call`` it needs answered and
receives the ``httpx.Response``, then returns its result. ``Client`` drives
operations with blocking I/O and ``AsyncClient`` with ``await``, so the two
share every request, check and decision, and differ only in how they wait.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from ledger.core.canonical import canonical_bytes
from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.records import Record
from ledger.core.signing import VerifierKey
from ledger_client.answers import expect
from ledger_client.checks import (
    check_extends,
    check_inclusion,
    check_range,
    check_receipt,
    decode_proof,
    read_record,
    trusted_checkpoint,
)
from ledger_client.errors import LedgerClientError, VerificationError
from ledger_client.events import array_body, check_record_is_event
from ledger_client.receipts import Receipt
from ledger_client.state import CheckpointState

__all__ = ["Call", "Operation", "Page", "Trust"]

T = TypeVar("T")
JSON = "application/json"
# How often to re-check against a state file that other clients keep moving.
_STATE_RACES = 5


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request of an operation, relative to the client's base URL."""

    method: str
    path: str
    params: Mapping[str, str | int] | None = None
    headers: Mapping[str, str] | None = None
    content: bytes | None = None


Operation = Generator[Call, httpx.Response, T]


@dataclass(frozen=True, slots=True)
class Page:
    """Records of one page, and where the next page starts (None: at the head)."""

    records: list[Record]
    next_after_seq: int | None


@dataclass(slots=True)
class Trust:
    """The keys a checkpoint must be signed by, and the memory of the last one
    verified per ledger: the state file, or this client's own memory."""

    keys: tuple[VerifierKey, ...]
    state: CheckpointState | None = None
    _memory: dict[str, str] = field(default_factory=dict)

    def remembered(self, ledger: str) -> str | None:
        return self.state.get(ledger) if self.state is not None else self._memory.get(ledger)

    def replace(self, ledger: str, *, expected: str | None, note: str) -> bool:
        if self.state is not None:
            return self.state.replace(ledger, expected=expected, note=note)
        if self._memory.get(ledger) != expected:
            return False
        self._memory[ledger] = note
        return True


def ledger_path(ledger: str, *rest: str) -> str:
    return "/".join(("/v1/ledgers", quote(ledger, safe=""), *rest))


# -- answers ----------------------------------------------------------------------


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise VerificationError("response", f"the {what} is not JSON") from None


# -- checkpoints --------------------------------------------------------------------


def latest_checkpoint(
    trust: Trust, ledger: str, *, covering: int = 0
) -> Operation[SignedCheckpoint]:
    """The ledger's latest checkpoint, signed by a trusted key and proven to
    extend the one remembered (then remembered in its place).

    ``covering``: its tree must hold that seq (a receipt's), or the server
    has shown a log without a record it acknowledged.
    """
    for _ in range(_STATE_RACES):
        response = expect((yield Call("GET", ledger_path(ledger, "checkpoint"))), 200)
        text = response.text
        note = trusted_checkpoint(text, trust.keys, ledger=ledger)
        size = note.checkpoint.tree_size
        if size < covering:
            raise VerificationError(
                "checkpoint",
                f"the latest checkpoint (tree size {size}) does not hold the acknowledged "
                f"record {covering}",
                seq=covering,
            )
        remembered = trust.remembered(ledger)
        keep = text
        if remembered is not None:
            old = trusted_checkpoint(remembered, trust.keys, ledger=ledger)
            yield from _check_extends(ledger, old, note)
            if old.checkpoint.tree_size >= size:
                keep = remembered
        if trust.replace(ledger, expected=remembered, note=keep):
            return note
    raise LedgerClientError(f"the state of {ledger} kept changing under other clients: try again")


def _check_extends(ledger: str, old: SignedCheckpoint, new: SignedCheckpoint) -> Operation[None]:
    size1, size2 = old.checkpoint.tree_size, new.checkpoint.tree_size
    proof: list[bytes] | None = None
    if 0 < size1 < size2:
        response = yield Call(
            "GET", ledger_path(ledger, "proofs", "consistency"), params={"from": size1, "to": size2}
        )
        body = _json(expect(response, 200), "consistency proof")
        if not isinstance(body, dict) or body.get("from") != size1 or body.get("to") != size2:
            raise VerificationError(
                "consistency", f"the proof is not from tree size {size1} to {size2}"
            )
        hashes = body.get("proof")
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise VerificationError("consistency", "the proof is not a list of base64 hashes")
        try:
            proof = [base64.b64decode(h, validate=True) for h in hashes]
        except binascii.Error:
            raise VerificationError("consistency", "a proof hash is not base64") from None
    check_extends(old, new, proof)


def _prove_included(
    ledger: str, lines: Sequence[tuple[int, bytes]], note: SignedCheckpoint
) -> Operation[None]:
    """Each record is a leaf of the note's tree: a run of consecutive records by
    the inclusion proofs of its first and last (``core.merkle.verify_range``).
    When a run fails, its records are proven one by one, to name the first
    that is not in the tree."""
    for run in _runs(lines):
        first_seq = run[0][0]
        first = yield from _inclusion_proof(ledger, first_seq, note)
        last = first if len(run) == 1 else (yield from _inclusion_proof(ledger, run[-1][0], note))
        try:
            check_range([line for _, line in run], first_seq, first, last, note)
        except VerificationError:
            for seq, line in run:
                check_inclusion(line, seq, (yield from _inclusion_proof(ledger, seq, note)), note)
            raise


def _runs(lines: Sequence[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
    runs: list[list[tuple[int, bytes]]] = []
    for seq, line in lines:
        if runs and runs[-1][-1][0] == seq - 1:
            runs[-1].append((seq, line))
        else:
            runs.append([(seq, line)])
    return runs


def _inclusion_proof(ledger: str, seq: int, note: SignedCheckpoint) -> Operation[list[bytes]]:
    size = note.checkpoint.tree_size
    response = yield Call(
        "GET", ledger_path(ledger, "proofs", "inclusion"), params={"seq": seq, "tree_size": size}
    )
    return decode_proof(_json(expect(response, 200), "inclusion proof"), seq=seq, tree_size=size)


# -- appends ------------------------------------------------------------------------


def append(
    ledger: str,
    events: Sequence[dict[str, Any]],
    *,
    as_batch: bool,
    idempotency_key: str,
    trust: Trust | None,
    encoded: Sequence[bytes] | None = None,
) -> Operation[list[Receipt]]:
    """POST the events (one object, or a batch array) and read the receipts;
    with ``trust``, prove each record is the event sent, in the signed log.
    ``encoded``: the events' canonical bytes, when the caller has them."""
    parts = encoded if encoded is not None else [canonical_bytes(e) for e in events]
    body = array_body(parts) if as_batch else parts[0]
    response = yield Call(
        "POST",
        ledger_path(ledger, "events"),
        headers={"Idempotency-Key": idempotency_key, "Content-Type": JSON},
        content=body,
    )
    expect(response, 200, 201)
    replayed = response.status_code == 200
    value = _json(response, "append response")
    answers = value if as_batch else [value]
    if not isinstance(answers, list) or len(answers) != len(events):
        raise VerificationError("receipt", f"expected {len(events)} receipt(s)")
    receipts = [Receipt.from_json(answer, replayed=replayed) for answer in answers]
    for receipt, event in zip(receipts, events, strict=True):
        if receipt.id != event["id"]:
            raise VerificationError(
                "receipt",
                f"the receipt is for event {receipt.id}, not {event['id']}",
                seq=receipt.seq,
            )
    if trust is None:
        return receipts
    return (yield from verify_receipts(trust, ledger, receipts, events))


def verify_receipts(
    trust: Trust, ledger: str, receipts: Sequence[Receipt], events: Sequence[dict[str, Any]]
) -> Operation[list[Receipt]]:
    """Each receipt's record is the event sent, and is included in the latest
    checkpoint, which extends the one remembered."""
    note = yield from latest_checkpoint(trust, ledger, covering=max(r.seq for r in receipts))
    # One append's records are consecutive (one group): one page holds them all.
    first = receipts[0].seq
    if any(r.seq != first + n for n, r in enumerate(receipts)):
        raise VerificationError("receipt", "one append's receipts are not consecutive seqs")
    fetched = yield from _page_lines(ledger, first - 1, len(receipts))
    lines: list[tuple[int, bytes]] = []
    for line, receipt, event in zip(fetched, receipts, events, strict=False):
        record = read_record(line, ledger=ledger, seq=receipt.seq)
        check_receipt(receipt, record, line)
        check_record_is_event(record, event)
        lines.append((receipt.seq, line))
    if len(lines) < len(receipts):
        missing = receipts[len(lines)].seq
        raise VerificationError(
            "record", "the log does not hold the acknowledged record", seq=missing
        )
    yield from _prove_included(ledger, lines, note)
    size = note.checkpoint.tree_size
    return [_verified(receipt, size) for receipt in receipts]


def _verified(receipt: Receipt, size: int) -> Receipt:
    return replace(receipt, verified_in=size)


# -- reads --------------------------------------------------------------------------


def _record_bytes(ledger: str, seq: int) -> Operation[bytes]:
    response = yield Call("GET", ledger_path(ledger, "events", str(seq)))
    return expect(response, 200).content


def record(ledger: str, seq: int, *, trust: Trust | None) -> Operation[Record]:
    line = yield from _record_bytes(ledger, seq)
    found = read_record(line, ledger=ledger, seq=seq)
    if trust is not None:
        note = yield from latest_checkpoint(trust, ledger, covering=seq)
        yield from _prove_included(ledger, [(seq, line)], note)
    return found


def page(
    ledger: str,
    after_seq: int,
    *,
    limit: int,
    trust: Trust | None,
    note: SignedCheckpoint | None,
) -> Operation[tuple[Page, SignedCheckpoint | None]]:
    """One page of records after ``after_seq``; with ``trust``, each proven
    included in ``note`` (or a newer checkpoint, fetched when the page runs
    past it). Returns the page and the checkpoint it was proven in."""
    lines, after = yield from _page(ledger, after_seq, limit)
    records = [
        read_record(line, ledger=ledger, seq=after_seq + n) for n, line in enumerate(lines, 1)
    ]
    if trust is not None and records:
        last = records[-1].seq
        if note is None or note.checkpoint.tree_size < last:
            note = yield from latest_checkpoint(trust, ledger, covering=last)
        yield from _prove_included(
            ledger, [(r.seq, line) for r, line in zip(records, lines, strict=True)], note
        )
    return Page(records, after), note


def _page(ledger: str, after_seq: int, limit: int) -> Operation[tuple[list[bytes], int | None]]:
    """The canonical bytes of up to ``limit`` records after ``after_seq``, and the next cursor."""
    response = yield Call(
        "GET", ledger_path(ledger, "events"), params={"after_seq": after_seq, "limit": limit}
    )
    body = _json(expect(response, 200), "page")
    items = body.get("items") if isinstance(body, dict) else None
    after = body.get("next_after_seq") if isinstance(body, dict) else None
    if not isinstance(items, list) or not (after is None or type(after) is int):
        raise VerificationError("response", "the page is not {items, next_after_seq}")
    # The server splices each record in as its canonical bytes; serializing
    # the parsed item again gives them back (read_record checks they are).
    return [canonical_bytes(item) for item in items], after


def _page_lines(ledger: str, after_seq: int, count: int) -> Operation[list[bytes]]:
    lines, _ = yield from _page(ledger, after_seq, count)
    return lines


def json_document(path: str, params: Mapping[str, str | int] | None = None) -> Operation[Any]:
    response = yield Call("GET", path, params=params)
    return _json(expect(response, 200), "document")


def upload_document(ledger: str, content: bytes, media_type: str) -> Operation[dict[str, Any]]:
    """POST a source document (docs/documents.md); the answer must name the
    bytes sent: their SHA-256 and size."""
    path = ledger_path(ledger, "documents")
    response = yield Call("POST", path, headers={"Content-Type": media_type}, content=content)
    held = _json(expect(response, 200, 201), "document")
    sha256 = hashlib.sha256(content).hexdigest()
    if not isinstance(held, dict) or (held.get("sha256"), held.get("size")) != (
        sha256,
        len(content),
    ):
        raise VerificationError(
            "document", f"the server did not hold the document as {sha256} ({len(content)} bytes)"
        )
    return held


def create_ledger(name: str, *, title: str | None, description: str | None) -> Operation[Any]:
    body: dict[str, str] = {"name": name}
    if title is not None:
        body["title"] = title
    if description is not None:
        body["description"] = description
    response = yield Call(
        "POST", "/v1/ledgers", headers={"Content-Type": JSON}, content=canonical_bytes(body)
    )
    return _json(expect(response, 201), "ledger")
