"""Events as the client sends them, and the check that a record is what was sent.

Every event leaves with an ``id`` (one the caller gave, or a fresh
time-ordered UUID, RFC 9562 version 7): it names the event across retries,
lets ``ledger-client post`` skip what the log already holds, and ties a
receipt to the event it answers.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ledger.core.canonical import canonical_bytes
from ledger.core.records import Record
from ledger.core.times import parse_occurred_at
from ledger_client.errors import VerificationError

__all__ = ["array_body", "batches", "check_record_is_event", "new_event_id", "prepare_event"]

# The members a client may send (format §1): the server assigns the rest.
_SENT_MEMBERS = ("id", "type", "party", "topic", "occurred_at", "data", "source")


def new_event_id() -> str:
    """A version 7 UUID (RFC 9562 §5.7): 48 bits of Unix milliseconds, then random bits."""
    value = int.from_bytes(os.urandom(10), "big")  # the low 80 bits
    value |= (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC variant, 0b10
    return str(uuid.UUID(int=value))


def prepare_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``event`` with an ``id``: the caller's, or a new one."""
    if not isinstance(event, Mapping):
        raise TypeError(f"an event is a mapping of members, not {type(event).__name__}")
    prepared = dict(event)
    if "id" not in prepared:
        prepared["id"] = new_event_id()
    return prepared


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
        if name in ("data", "source") and sent is not None:
            if name not in stored or canonical_bytes(stored[name]) != canonical_bytes(sent):
                raise differs(name)
            continue
        if stored.get(name) != sent:
            raise differs(name)
