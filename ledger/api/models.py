"""Response models: they document the API in OpenAPI (``/docs``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

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
    name: str = Field(
        description="Ledger name: ^[a-z0-9][a-z0-9-]{0,62}$", examples=["us-ua-minerals-2025"]
    )


class LedgerOut(BaseModel):
    name: str
    created_at: str = Field(description="YYYY-MM-DDTHH:MM:SS.ffffffZ")
    size: int = Field(description="Number of records; the seq of the head")
    head_hash: str = Field(description="H(record size), or 64 zeros when empty")


class LedgerList(BaseModel):
    items: list[LedgerOut]


class ReceiptOut(BaseModel):
    seq: int
    id: str
    hash: str = Field(description="H(record): SHA-256 of its RFC 8785 bytes, hex")
    prev: str
    recorded_at: str


class RecordOut(BaseModel):
    """A SPEC §1 record, exactly; RFC 8785 of this object is its canonical bytes."""

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
