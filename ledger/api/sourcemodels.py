"""Response models of the sources view (docs/sources.md), for OpenAPI (``/docs``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["CitationOut", "SourceDetail", "SourceList", "SourceSummary"]


class SourceSummary(BaseModel):
    name: str = Field(description="The sources' `source.name`, exactly", examples=["CNN"])
    kinds: list[str] = Field(description="Distinct `source.kind`s, in first-cited order")
    urls: list[str] = Field(description="Distinct `source.url`s, in first-cited order")
    documents: list[str] = Field(
        description="Distinct `source.document`s (SHA-256 of archived copies), in first-cited order"
    )
    records: int = Field(description="How many records cite it, retracted ones not counted")
    parties: list[str] = Field(description="Parties of the citing records not retracted, sorted")
    topics: list[str] = Field(description="Topics of the citing records not retracted, sorted")
    first_seq: int = Field(description="The first citing record (retracted or not)")
    last_seq: int = Field(description="The last citing record (retracted or not)")


class SourceList(BaseModel):
    ledger: str
    tree_size: int = Field(description="The head the view was read at")
    sources: list[SourceSummary] = Field(description="Sorted by name (code point order)")


class CitationOut(BaseModel):
    """A record citing the source, with its members as corrected."""

    seq: int
    id: str
    type: str
    party: str | None = Field(default=None, description="Omitted when absent")
    topic: str | None = Field(default=None, description="Omitted when absent")
    occurred_at: str
    kind: str = Field(description="`source.kind` of this citation")
    url: str | None = Field(default=None, description="Omitted when absent")
    reported_at: str | None = Field(default=None, description="Omitted when absent")
    document: str | None = Field(
        default=None, description="SHA-256 of the archived copy; omitted when absent"
    )
    corrected_by: list[int] = Field(description="Seqs of the corrections of this record")
    retracted_by: int | None = Field(
        default=None, description="Seq of its retraction; omitted unless retracted"
    )


class SourceDetail(SourceSummary):
    ledger: str
    tree_size: int = Field(description="The head the view was read at")
    citations: list[CitationOut] = Field(description="Every citing record, in seq order")
