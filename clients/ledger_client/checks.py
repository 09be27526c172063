"""The checks behind ``verify=True``, in the core's terms (docs/format.md §2, §3, §5).

Each turns the core's verdict into a ``VerificationError`` that names the
check: a checkpoint signed by a trusted key for this ledger, a consistency
proof from the remembered checkpoint, a record's canonical bytes, and an
RFC 9162 inclusion proof of its leaf in the checkpoint's tree.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from ledger.core.canonical import canonical_bytes
from ledger.core.checkpoint import SignedCheckpoint
from ledger.core.errors import InputError
from ledger.core.errors import VerificationError as CoreVerificationError
from ledger.core.hashing import leaf_hash, record_hash
from ledger.core.jsonvalues import loads_strict
from ledger.core.merkle import verify_inclusion, verify_range
from ledger.core.records import Record
from ledger.core.signing import VerifierKey
from ledger.core.verification import check_checkpoint, check_consistency
from ledger_client.errors import VerificationError
from ledger_client.receipts import Receipt

__all__ = [
    "check_extends",
    "check_inclusion",
    "check_range",
    "check_receipt",
    "decode_proof",
    "read_record",
    "trusted_checkpoint",
]


def trusted_checkpoint(text: str, keys: Sequence[VerifierKey], *, ledger: str) -> SignedCheckpoint:
    """``text`` is a checkpoint of ``ledger`` signed by one of ``keys``."""
    try:
        return check_checkpoint(text, list(keys), ledger=ledger)
    except CoreVerificationError as e:
        raise VerificationError("checkpoint", str(e)) from None


def check_extends(
    old: SignedCheckpoint, new: SignedCheckpoint, proof: Sequence[bytes] | None
) -> None:
    """``new`` is ``old``'s tree grown by appending only (RFC 9162 §2.1.4)."""
    try:
        check_consistency(old, new, proof)
    except CoreVerificationError as e:
        raise VerificationError("consistency", str(e)) from None


def read_record(line: bytes, *, ledger: str, seq: int) -> Record:
    """The record whose canonical bytes are ``line``: record ``seq`` of ``ledger``."""
    try:
        value = loads_strict(line)
        record = Record.from_dict(value)
    except (InputError, CoreVerificationError) as e:
        raise VerificationError("record", str(e), seq=seq) from None
    if canonical_bytes(value) != line:
        raise VerificationError("record", "the bytes are not RFC 8785 canonical", seq=seq)
    if record.ledger != ledger or record.seq != seq:
        raise VerificationError(
            "record", f"the record is {record.ledger} #{record.seq}, not {ledger} #{seq}", seq=seq
        )
    return record


def decode_proof(body: Any, *, seq: int, tree_size: int) -> list[bytes]:
    """The hashes of an inclusion proof response for ``seq`` in a tree of ``tree_size``."""
    if not isinstance(body, dict):
        raise VerificationError("inclusion", "the proof is not a JSON object", seq=seq)
    if body.get("tree_size") != tree_size or body.get("leaf_index") != seq - 1:
        raise VerificationError(
            "inclusion", f"the proof is not for leaf {seq - 1} of tree size {tree_size}", seq=seq
        )
    hashes = body.get("proof")
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise VerificationError("inclusion", "the proof is not a list of base64 hashes", seq=seq)
    try:
        return [base64.b64decode(h, validate=True) for h in hashes]
    except binascii.Error:
        raise VerificationError("inclusion", "a proof hash is not base64", seq=seq) from None


def check_inclusion(line: bytes, seq: int, proof: Sequence[bytes], note: SignedCheckpoint) -> None:
    """Record ``seq`` (canonical bytes ``line``) is leaf ``seq - 1`` of the note's tree."""
    checkpoint = note.checkpoint
    if seq > checkpoint.tree_size:
        raise VerificationError(
            "inclusion",
            f"the checkpoint's tree (size {checkpoint.tree_size}) has no leaf {seq}",
            seq=seq,
        )
    try:
        verify_inclusion(seq - 1, checkpoint.tree_size, leaf_hash(line), proof, checkpoint.root)
    except CoreVerificationError as e:
        raise VerificationError("inclusion", e.reason, seq=seq) from None


def check_range(
    lines: Sequence[bytes],
    first_seq: int,
    first_proof: Sequence[bytes],
    last_proof: Sequence[bytes],
    note: SignedCheckpoint,
) -> None:
    """Records ``first_seq, first_seq + 1, …`` (canonical bytes ``lines``) are
    leaves of the note's tree, from the inclusion proofs of the first and the last."""
    checkpoint = note.checkpoint
    last_seq = first_seq + len(lines) - 1
    if last_seq > checkpoint.tree_size:
        raise VerificationError(
            "inclusion",
            f"the checkpoint's tree (size {checkpoint.tree_size}) has no leaf {last_seq}",
            seq=last_seq,
        )
    try:
        verify_range(
            first_seq - 1,
            checkpoint.tree_size,
            [leaf_hash(line) for line in lines],
            first_proof,
            last_proof,
            checkpoint.root,
        )
    except CoreVerificationError as e:
        raise VerificationError("inclusion", e.reason, seq=first_seq) from None


def check_receipt(receipt: Receipt, record: Record, line: bytes) -> None:
    """The record at the receipt's seq is the one the receipt describes."""
    expected = {
        "id": (receipt.id, record.id),
        "hash": (receipt.hash, record_hash(line)),
        "prev": (receipt.prev, record.prev),
        "recorded_at": (receipt.recorded_at, record.recorded_at),
        "leaf_index": (receipt.leaf_index, record.seq - 1),
    }
    for name, (stated, actual) in expected.items():
        if stated != actual:
            raise VerificationError(
                "receipt", f"the receipt's {name} is not the record's", seq=receipt.seq
            )
