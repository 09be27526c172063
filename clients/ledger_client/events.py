"""Events as the client sends them, and the check that a record is what was sent.

Every event leaves with an ``id`` (one the caller gave, or a fresh
time-ordered UUID, RFC 9562 version 7): it names the event across retries,
lets ``ledger-client post`` skip what the log already holds, and ties a
receipt to the event it answers.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.core.authors import sign_event
from ledger.core.canonical import canonical_bytes
from ledger.core.documents import document_paths, media_type_for
from ledger.core.errors import InputError
from ledger.core.records import Record
from ledger.core.signing import VerifierKey
from ledger.core.times import parse_occurred_at
from ledger_client.errors import VerificationError

__all__ = [
    "EventSigner",
    "array_body",
    "batches",
    "check_record_is_event",
    "new_event_id",
    "prepare_event",
]

# The members a client may send (format §1, §1.4): the server assigns the rest.
_SENT_MEMBERS = ("id", "type", "party", "topic", "occurred_at", "data", "source", "author")


class EventSigner:
    """A desk's Ed25519 key (format §1.4): signs each event before it is sent.

    The signature covers the record's members, so the event is sent as the
    record will keep it: ``occurred_at`` in its stored form, with its ``id``.
    """

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self.private_key = private_key
        # Checks the name (format §3) and gives the key id signatures carry.
        self.verifier = VerifierKey.from_public_key(name, private_key.public_key())

    @classmethod
    def from_pem_file(cls, name: str, path: str | os.PathLike[str]) -> EventSigner:
        """A PKCS#8 PEM Ed25519 private key (``ledger-client keygen`` writes one)."""
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(name, key)

    def sign(self, ledger: str, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` with its ``author`` member, for ``ledger``."""
        signed = dict(event)
        occurred_at = signed.get("occurred_at")
        if isinstance(occurred_at, str):
            # One that does not parse is sent as it is, for the server to refuse.
            with contextlib.suppress(ValueError):
                signed["occurred_at"] = parse_occurred_at(occurred_at)
        signed["author"] = sign_event(
            self.private_key, self.name, ledger, signed, key_id=self.verifier.key_id_hex
        )
        return signed


def new_event_id() -> str:
    """A version 7 UUID (RFC 9562 §5.7): 48 bits of Unix milliseconds, then random bits."""
    value = int.from_bytes(os.urandom(10), "big")  # the low 80 bits
    value |= (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC variant, 0b10
    return str(uuid.UUID(int=value))


def prepare_event(
    event: Mapping[str, Any], ledger: str = "", signer: EventSigner | None = None
) -> dict[str, Any]:
    """A copy of ``event`` with an ``id`` (the caller's, or a new one), signed
    for ``ledger`` by ``signer`` unless it already carries a signature."""
    if not isinstance(event, Mapping):
        raise TypeError(f"an event is a mapping of members, not {type(event).__name__}")
    prepared = dict(event)
    if "id" not in prepared:
        prepared["id"] = new_event_id()
    if signer is not None and "author" not in prepared:
        prepared = signer.sign(ledger, prepared)
    return prepared


Document = bytes | str | os.PathLike[str]


def document_content(document: Document, media_type: str | None) -> tuple[bytes, str]:
    """A source document's bytes and media type: given, or a file's (its media
    type from its extension unless ``media_type`` says)."""
    if isinstance(document, bytes):
        if media_type is None:
            raise ValueError("a document given as bytes needs its media_type")
        return document, media_type
    path = Path(document)
    try:
        kind = media_type or media_type_for(path.name)
    except InputError as e:
        raise ValueError(e.detail) from None
    return path.read_bytes(), kind


def local_documents(event: Mapping[str, Any]) -> list[str]:
    """The files an event's sources give as ``document_path`` (to upload, and cite by hash)."""
    try:
        return document_paths(dict(event))
    except InputError as e:
        raise ValueError(str(e)) from None


def batches(
    events: Iterable[dict[str, Any]], *, max_events: int, max_bytes: int
) -> Iterator[list[tuple[dict[str, Any], bytes]]]:
    """``events`` in order, each with its canonical bytes, in groups of at most
    ``max_events`` whose JSON array fits in ``max_bytes`` (an event too large
    on its own goes alone, for the server to refuse with a problem that names
    it). The bytes are encoded once: a canonical array is its elements'
    canonical bytes joined by commas (RFC 8785), which ``array_body`` does."""
    group: list[tuple[dict[str, Any], bytes]] = []
    size = 2  # the brackets
    for event in events:
        encoded = canonical_bytes(event)
        length = len(encoded) + 1  # and its comma
        if group and (len(group) >= max_events or size + length > max_bytes):
            yield group
            group, size = [], 2
        group.append((event, encoded))
        size += length
    if group:
        yield group


def array_body(encoded: Iterable[bytes]) -> bytes:
    """The canonical JSON array of values given as their canonical bytes."""
    return b"[" + b",".join(encoded) + b"]"


def check_record_is_event(record: Record, event: Mapping[str, Any]) -> None:
    """The record holds exactly the members the client sent (``occurred_at`` in
    its stored form), so the server wrote what was asked and nothing else."""

    def differs(name: str) -> VerificationError:
        return VerificationError(
            "record", f"the record's {name} is not the one sent", seq=record.seq
        )

    stored = record.to_dict()
    for name in _SENT_MEMBERS:
        sent = event.get(name)
        if name == "occurred_at" and isinstance(sent, str):
            try:
                sent = parse_occurred_at(sent)
            except ValueError:
                raise differs(name) from None
        if name in ("data", "source", "author") and sent is not None:
            if name not in stored or canonical_bytes(stored[name]) != canonical_bytes(sent):
                raise differs(name)
            continue
        if stored.get(name) != sent:
            raise differs(name)
