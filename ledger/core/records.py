"""The record of format §1 as a frozen value, and its strict reading.

A record is exactly the members listed in format §1; absent optional members
are omitted, never ``null``. ``Record.from_dict`` is what a verifier uses on
bytes it does not trust, so it checks every member's type and format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from ledger.core.authors import AUTHOR_TYPES, AuthorMark, AuthorRuleBroken
from ledger.core.canonical import canonical_bytes, canonical_bytes_of_strict
from ledger.core.errors import MalformedRecord
from ledger.core.hashing import record_hash
from ledger.core.times import OCCURRED_AT_PATTERN, RECORDED_AT_PATTERN

__all__ = [
    "LEDGER_NAME_PATTERN",
    "OPTIONAL_MEMBERS",
    "RECORD_MEMBERS",
    "SERVER_MEMBERS",
    "SERVER_TYPES",
    "UUID_PATTERN",
    "EventDraft",
    "Record",
    "RecordFrame",
    "SealedDraft",
]

LEDGER_NAME_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
UUID_PATTERN = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")

REQUIRED_MEMBERS = frozenset(
    {"ledger", "seq", "id", "type", "occurred_at", "recorded_at", "data", "actor", "prev"}
)
OPTIONAL_MEMBERS = frozenset({"party", "topic", "source", "author"})
RECORD_MEMBERS = REQUIRED_MEMBERS | OPTIONAL_MEMBERS
# Members only the server may set; a client that sends one is refused.
SERVER_MEMBERS = frozenset({"ledger", "seq", "recorded_at", "actor", "prev"})
# Types only the server writes, on an admin's command: a client-sent key
# rotation (format §3) or author registration (format §1.4) would be forgery.
SERVER_TYPES = frozenset({"key.rotated"}) | AUTHOR_TYPES


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    ledger: str
    seq: int
    id: str
    type: str
    occurred_at: str
    recorded_at: str
    data: dict[str, Any]
    actor: str
    prev: str
    party: str | None = None
    topic: str | None = None
    source: dict[str, Any] | None = None
    # format §1.4: the desk's signature over the event, when it signed it.
    author: dict[str, Any] | None = None
    # True when ``data`` and ``source`` came from ``loads_strict`` (via an
    # ``EventDraft``), so hold strict JSON values only: the canonical form
    # needs no check of their types. Not part of the record.
    strict: bool = field(default=False, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ledger": self.ledger,
            "seq": self.seq,
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
            "data": self.data,
            "actor": self.actor,
            "prev": self.prev,
        }
        if self.party is not None:
            out["party"] = self.party
        if self.topic is not None:
            out["topic"] = self.topic
        if self.source is not None:
            out["source"] = self.source
        if self.author is not None:
            out["author"] = self.author
        return out

    def canonical(self) -> bytes:
        """``canon(r)`` of format §2."""
        if self.strict:
            return canonical_bytes_of_strict(self.to_dict())
        return canonical_bytes(self.to_dict())

    def hash(self) -> str:
        """``H(r)`` of format §2."""
        return record_hash(self.canonical())

    @classmethod
    def from_dict(cls, obj: Any) -> Record:
        """Read an untrusted format §1 object; ``MalformedRecord`` names what is wrong."""
        seq_hint = obj.get("seq") if isinstance(obj, dict) else None
        seq = seq_hint if isinstance(seq_hint, int) and not isinstance(seq_hint, bool) else None

        def bad(why: str) -> MalformedRecord:
            return MalformedRecord(why, seq=seq)

        if not isinstance(obj, dict):
            raise bad("a record must be a JSON object")
        missing = REQUIRED_MEMBERS - obj.keys()
        if missing:
            raise bad(f"missing member(s): {', '.join(sorted(missing))}")
        extra = obj.keys() - RECORD_MEMBERS
        if extra:
            raise bad(f"unknown member(s): {', '.join(sorted(extra))}")
        for name in ("ledger", "id", "type", "occurred_at", "recorded_at", "actor", "prev"):
            if not isinstance(obj[name], str):
                raise bad(f"{name} must be a string")
        for name in ("party", "topic"):
            if name in obj and not isinstance(obj[name], str):
                raise bad(f"{name} must be a string")
        if seq is None or seq < 1:
            raise bad("seq must be an integer >= 1")
        if not LEDGER_NAME_PATTERN.match(obj["ledger"]):
            raise bad("ledger is not a valid ledger name")
        if not UUID_PATTERN.match(obj["id"]):
            raise bad("id is not a lowercase UUID")
        if not OCCURRED_AT_PATTERN.match(obj["occurred_at"]):
            raise bad("occurred_at is not YYYY-MM-DDTHH:MM:SSZ")
        if not RECORDED_AT_PATTERN.match(obj["recorded_at"]):
            raise bad("recorded_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
        if not _HEX64.match(obj["prev"]):
            raise bad("prev is not 64 lowercase hex digits")
        if not isinstance(obj["data"], dict):
            raise bad("data must be an object")
        if "source" in obj and not isinstance(obj["source"], dict):
            raise bad("source must be an object")
        if "author" in obj:
            try:
                AuthorMark.from_value(obj["author"])
            except AuthorRuleBroken as e:
                raise bad(e.reason) from None
        return cls(
            ledger=obj["ledger"],
            seq=seq,
            id=obj["id"],
            type=obj["type"],
            occurred_at=obj["occurred_at"],
            recorded_at=obj["recorded_at"],
            data=obj["data"],
            actor=obj["actor"],
            prev=obj["prev"],
            party=obj.get("party"),
            topic=obj.get("topic"),
            source=obj.get("source"),
            author=obj.get("author"),
        )


class EventDraft(NamedTuple):
    """A validated client event: a record minus the members the server assigns.

    ``data`` and ``source`` are held as their canonical bytes (format §2), so a
    record's canonical form is spliced from them (``RecordFrame``) rather
    than serialized again, and an event parsed in the intake worker travels
    as those bytes without being decoded in the server at all. ``data`` and
    ``source`` decode them on demand (a fresh value each time). Build one with
    ``EventDraft.of``.

    A named tuple rather than a frozen dataclass: a 500-event batch from the
    intake worker makes 500 of them on the server's one busy thread, and a
    frozen dataclass's ``__init__`` (a guarded ``setattr`` per field) costs
    several times what ``_make`` does.
    """

    id: str
    type: str
    occurred_at: str
    data_json: bytes
    party: str | None = None
    topic: str | None = None
    source_json: bytes | None = None
    # True when the server drew ``id`` (122 random bits): no earlier record can
    # hold it, so the recorder need not look it up (the unique index still would).
    id_assigned: bool = False
    # The canonical bytes of the ``author`` member (format §1.4), when signed.
    author_json: bytes | None = None
    # The public key a pass before the recorder (the intake worker) verified
    # the signature with: the recorder then only checks that the registry
    # holds that very key. Never read from what a client sends.
    signature_checked_with: bytes | None = None

    @classmethod
    def of(
        cls,
        *,
        id: str,
        type: str,
        occurred_at: str,
        data: dict[str, Any],
        party: str | None = None,
        topic: str | None = None,
        source: dict[str, Any] | None = None,
        id_assigned: bool = False,
        author: dict[str, Any] | None = None,
        strict: bool = False,
    ) -> EventDraft:
        """A draft of these members. ``strict``: ``data`` and ``source`` came from
        ``loads_strict`` (see ``Record.strict``), so need no check of their types."""
        encode = canonical_bytes_of_strict if strict else canonical_bytes
        return cls(
            id=id,
            type=type,
            occurred_at=occurred_at,
            data_json=encode(data),
            party=party,
            topic=topic,
            source_json=None if source is None else encode(source),
            id_assigned=id_assigned,
            author_json=None if author is None else encode(author),
        )

    @property
    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.data_json)
        return value

    @property
    def source(self) -> dict[str, Any] | None:
        if self.source_json is None:
            return None
        value: dict[str, Any] = orjson.loads(self.source_json)
        return value

    @property
    def author(self) -> dict[str, Any] | None:
        if self.author_json is None:
            return None
        value: dict[str, Any] = orjson.loads(self.author_json)
        return value

    @property
    def author_name(self) -> str | None:
        """The name in the ``author`` member (format §1.4), if the event is signed."""
        author = self.author
        name = author.get("name") if author is not None else None
        return name if isinstance(name, str) else None

    def signed_members(self, ledger: str) -> dict[str, Any]:
        """The members an author signs (format §1.4) of the record this becomes in ``ledger``."""
        members: dict[str, Any] = {
            "ledger": ledger,
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "data": self.data,
        }
        for name, value in (("party", self.party), ("topic", self.topic)):
            if value is not None:
                members[name] = value
        if self.source_json is not None:
            members["source"] = self.source
        return members

    @property
    def claimant(self) -> str | None:
        """``ledger.core.positions.claimant_of`` of the record this draft becomes.

        Only data whose bytes name ``"claimed_by"`` is decoded: a canonical
        member name is written as itself, and inside a string a quote is
        escaped, so data without those bytes holds no such member.
        """
        if self.type != "position.stated" or b'"claimed_by"' not in self.data_json:
            return None
        claimant = self.data.get("claimed_by")
        return claimant if isinstance(claimant, str) else None

    def seal(self, *, ledger: str, seq: int, prev: str, recorded_at: str, actor: str) -> Record:
        """The record this draft becomes at ``seq`` behind ``prev``."""
        return Record(
            ledger=ledger,
            seq=seq,
            id=self.id,
            type=self.type,
            occurred_at=self.occurred_at,
            recorded_at=recorded_at,
            data=self.data,
            actor=actor,
            prev=prev,
            party=self.party,
            topic=self.topic,
            source=self.source,
            author=self.author,
        )


class SealedDraft(NamedTuple):
    """A draft sealed at ``seq``: what projections see of a new record, whose
    canonical bytes the recorder spliced (``RecordFrame``)."""

    seq: int
    draft: EventDraft


@dataclass(frozen=True, slots=True)
class RecordFrame:
    """The members the server assigns to one group's records, except ``seq`` and
    ``prev``, pre-encoded: ``canonical_record`` splices a draft's canonical
    record from them without serializing the record as a whole.

    RFC 8785 writes an object as its members sorted by name, each as
    ``"name":`` and the canonical form of its value, so a record's canonical
    bytes are the canonical bytes of its members' values joined in format §1's
    member order: actor, author, data, id, ledger, occurred_at, party, prev,
    recorded_at, seq, source, topic, type (all ASCII names, so code-point and
    UTF-16 order agree). ``tests/core/test_records.py`` holds the splice equal
    to ``Record.canonical`` and to the reference implementation.
    """

    opening: bytes  # {"actor":<actor>,"data":
    ledger_member: bytes  # ,"ledger":<ledger>,"occurred_at":
    recorded_at_member: bytes  # ","recorded_at":<recorded_at>,"seq":
    signed_opening: bytes  # {"actor":<actor>,"author":

    @classmethod
    def of(cls, *, ledger: str, actor: str, recorded_at: str) -> RecordFrame:
        return cls(
            opening=b'{"actor":' + canonical_bytes(actor) + b',"data":',
            ledger_member=b',"ledger":' + canonical_bytes(ledger) + b',"occurred_at":',
            recorded_at_member=b',"recorded_at":' + canonical_bytes(recorded_at) + b',"seq":',
            signed_opening=b'{"actor":' + canonical_bytes(actor) + b',"author":',
        )

    def canonical_record(self, draft: EventDraft, *, seq: int, prev: str) -> bytes:
        """``canon(r)`` of ``draft.seal(seq=seq, prev=prev, ...)`` under this frame."""
        # A lone string needs none of canonical_bytes' checks (they concern
        # numbers, types and member order): orjson writes it exactly as RFC
        # 8785 does, or refuses it (a lone surrogate), as the reference does.
        dumps = orjson.dumps
        if draft.author_json is None:
            parts = [self.opening]
        else:
            parts = [self.signed_opening, draft.author_json, b',"data":']
        parts += (
            draft.data_json,
            b',"id":',
            dumps(draft.id),
            self.ledger_member,
            dumps(draft.occurred_at),
        )
        if draft.party is not None:
            parts += (b',"party":', dumps(draft.party))
        parts += (b',"prev":', dumps(prev), self.recorded_at_member, str(seq).encode())
        if draft.source_json is not None:
            parts += (b',"source":', draft.source_json)
        if draft.topic is not None:
            parts += (b',"topic":', dumps(draft.topic))
        parts += (b',"type":', dumps(draft.type), b"}")
        return b"".join(parts)
