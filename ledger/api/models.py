"""Response models: they document the API in OpenAPI (``/docs``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EventPage",
    "Head",
    "LedgerCreate",
    "LedgerList",
    "LedgerOut",
    "Problem",
    "ReceiptOut",
    "RecordOut",
]


class LedgerCreate(BaseModel):
    # The server refuses unknown members (422): say so in the schema.
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="Ledger name: lowercase letters, digits and hyphens, at most 63",
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        examples=["us-ua-minerals-2025"],
    )
    public_read: bool = Field(
        default=True,
        description="false: records, proofs and positions are readable only with a token "
        "holding read (or read:LEDGER), append or admin",
    )
    title: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f-\x9f\s](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$",
        description="What readers see as the ledger's name on its page: one line, "
        "no leading or trailing whitespace",
        examples=["US-Ukraine minerals deal, 2025"],
    )
    description: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        pattern=r"^[^\x00-\x1f\x7f-\x9f\s](?:[^\x00-\x09\x0b-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$",
        description="A few sentences for readers; newlines allowed, other control characters not",
    )


class LedgerOut(BaseModel):
    name: str
    title: str | None = Field(description="Set at creation; null when none was given")
    description: str | None = Field(description="Set at creation; null when none was given")
    created_at: str = Field(description="YYYY-MM-DDTHH:MM:SS.ffffffZ")
    size: int = Field(description="Number of records; the seq of the head")
    head_hash: str = Field(description="H(record size), or 64 zeros when empty")
    public_read: bool = Field(description="false: reading needs a token")


class LedgerList(BaseModel):
    items: list[LedgerOut]


class ReceiptOut(BaseModel):
    seq: int
    id: str
    hash: str = Field(description="H(record): SHA-256 of its RFC 8785 bytes, hex")
    prev: str
    recorded_at: str
    leaf_index: int = Field(description="seq - 1: the record's leaf in the Merkle tree")
    tree_size: int = Field(description="Size of the tree whose checkpoint this append signed")


class RecordOut(BaseModel):
    """A format §1 record, exactly; RFC 8785 of this object is its canonical bytes."""

    ledger: str
    seq: int
    id: str
    type: str
    party: str | None = Field(default=None, description="Omitted when absent")
    topic: str | None = Field(default=None, description="Omitted when absent")
    occurred_at: str
    recorded_at: str
    data: dict[str, Any]
    source: dict[str, Any] | None = Field(default=None, description="Omitted when absent")
    author: dict[str, Any] | None = Field(
        default=None,
        description="format §1.4: the signing desk's name, key id and signature; omitted when "
        "the event was not signed",
    )
    actor: str
    prev: str


class EventPage(BaseModel):
    items: list[RecordOut]
    next_after_seq: int | None = Field(
        description="Pass as after_seq for the next page; null at the head"
    )


class Head(BaseModel):
    size: int
    head_hash: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = Field(default=None, description="The offending input, e.g. data.stance")


class KeyOut(BaseModel):
    key_id: str = Field(description="8 hex digits")
    name: str
    origin: str = Field(description="Host part of the checkpoint origins this key signs for")
    verifier_key: str = Field(description="<name>+<key id>+<base64(0x01 || public key)>")
    status: str = Field(description="active or retired")
    not_before: str
    not_after: str | None


class KeyList(BaseModel):
    items: list[KeyOut]


class AuthorOut(BaseModel):
    name: str
    verifier_key: str = Field(description="<name>+<key id>+<base64(0x01 || public key)>")
    key_id: str = Field(description="8 hex digits, as signed records name it")
    status: str = Field(description="active or revoked")
    registered_seq: int = Field(description="The author.registered record")
    revoked_seq: int | None = Field(description="The author.revoked record, if any")


class AuthorList(BaseModel):
    items: list[AuthorOut]


class AuthorCreate(BaseModel):
    # The server refuses unknown members (422): say so in the schema.
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="The desk's name: 1-64 letters, digits, '.', '_' or '-'",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        examples=["ua-desk"],
    )
    verifier_key: str = Field(
        description="The desk's Ed25519 verifier key string, named `name`",
        examples=["ua-desk+1a2b3c4d+AT...="],
    )
    token: str | None = Field(
        default=None,
        description="A token to bind to the author: every event appended with it must then "
        "be signed by this author",
    )


class AuthorRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None, description="Why, recorded in the log (as `author.revoked`'s data)"
    )


class AuthorChange(BaseModel):
    receipt: ReceiptOut = Field(description="The author.registered or author.revoked record")
    author: AuthorOut


class InclusionProofOut(BaseModel):
    seq: int
    tree_size: int
    leaf_index: int
    proof: list[str] = Field(description="Base64 hashes, leaf side first (RFC 9162 2.1.3)")
    root: str = Field(description="Base64 Merkle root of tree_size")


class ConsistencyProofOut(BaseModel):
    model_config = {"populate_by_name": True}

    size1: int = Field(alias="from")
    size2: int = Field(alias="to")
    proof: list[str] = Field(description="Base64 hashes (RFC 9162 2.1.4)")
    root1: str
    root2: str


class RecordWithProof(BaseModel):
    record: RecordOut
    proof: InclusionProofOut
    checkpoint: str = Field(description="The latest signed checkpoint note")
