"""What an append asks for and what it gets back: requests, receipts and
results, and what the API lists of a ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.core.errors import DuplicateEventId
from ledger.core.records import EventDraft

__all__ = ["AppendRequest", "AppendResult", "LedgerInfo", "Receipt", "Sealed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerInfo:
    name: str
    created_at: str
    size: int
    head_hash: str
    public_read: bool = True
    title: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "created_at": self.created_at,
            "size": self.size,
            "head_hash": self.head_hash,
            "public_read": self.public_read,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    seq: int
    id: str
    hash: str
    prev: str
    recorded_at: str
    leaf_index: int
    # The tree size of the checkpoint signed for the append that holds this record.
    tree_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "hash": self.hash,
            "prev": self.prev,
            "recorded_at": self.recorded_at,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
        }


# What sealing one record gave its receipt: (seq, id, hash, prev, recorded_at).
Sealed = tuple[int, str, str, str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    """One request's records, each receipt naming ``tree_size``: the tree its
    group's commit signed, which holds them.

    Held as the tuples sealing gave, not as ``Receipt``s: for a 500-event
    batch, making 500 frozen dataclasses and then having orjson read them
    back field by field would be a large share of the server's busy thread. ``receipts``
    builds them on demand; ``receipts_json`` renders them from the tuples.
    """

    sealed: tuple[Sealed, ...]
    tree_size: int
    # True when an Idempotency-Key matched an earlier append: nothing was written.
    replayed: bool = False

    @classmethod
    def of(cls, receipts: Sequence[Receipt], *, replayed: bool = False) -> AppendResult:
        """The result these receipts (of one append, so of one tree size) describe."""
        sizes = {r.tree_size for r in receipts}
        if len(sizes) != 1:
            raise ValueError("an append's receipts name one tree size")
        sealed = tuple((r.seq, r.id, r.hash, r.prev, r.recorded_at) for r in receipts)
        return cls(sealed=sealed, tree_size=sizes.pop(), replayed=replayed)

    @property
    def receipts(self) -> tuple[Receipt, ...]:
        size = self.tree_size
        return tuple(
            Receipt(
                seq=seq,
                id=event_id,
                hash=digest,
                prev=prev,
                recorded_at=recorded_at,
                leaf_index=seq - 1,
                tree_size=size,
            )
            for seq, event_id, digest, prev, recorded_at in self.sealed
        )

    def receipts_json(self, *, batch: bool = True) -> bytes:
        """The receipts as JSON (an array, or the one object when not ``batch``),
        members in ``Receipt.to_dict``'s order."""
        size = self.tree_size
        items = [
            {
                "seq": seq,
                "id": event_id,
                "hash": digest,
                "prev": prev,
                "recorded_at": recorded_at,
                "leaf_index": seq - 1,
                "tree_size": size,
            }
            for seq, event_id, digest, prev, recorded_at in self.sealed
        ]
        return orjson.dumps(items if batch else items[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendRequest:
    """What one append asks for; ``build`` it, so a batch naming an id twice is refused."""

    ledger: str
    drafts: tuple[EventDraft, ...]
    actor: str
    idempotency_key: str | None = None
    request_sha256: str | None = None
    expected_seq: int | None = None

    @classmethod
    def build(
        cls,
        ledger: str,
        drafts: Sequence[EventDraft],
        *,
        actor: str,
        idempotency_key: str | None = None,
        request_sha256: str | None = None,
        expected_seq: int | None = None,
    ) -> AppendRequest:
        ids = [d.id for d in drafts]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            for index, event_id in enumerate(ids):
                if event_id in seen:
                    raise DuplicateEventId(
                        f"id {event_id} appears twice in this batch", field=f"[{index}].id"
                    )
                seen.add(event_id)
        return cls(
            ledger=ledger,
            drafts=tuple(drafts),
            actor=actor,
            idempotency_key=idempotency_key,
            request_sha256=request_sha256,
            expected_seq=expected_seq,
        )

    @property
    def weight(self) -> int:
        """Its share of a group's size cap."""
        return max(1, len(self.drafts))
