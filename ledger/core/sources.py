"""The sources view (docs/sources.md): who reported what, as the ledger knows it at its head.

``fold`` is the definition, from the records alone; ``SourceRows`` derives
the rows of the ``source_citations`` table (one per citing record, one per
fix of any record) and ``citations_from_rows`` reads them back, so the store
(which writes the rows on append and rebuild) and the audit (which derives
them again) share one derivation, and the tests hold it equal to ``fold``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ledger.core.positions import FIX_TYPES
from ledger.core.records import Record

__all__ = [
    "CORRECTED",
    "FIRST",
    "RETRACTED",
    "Citation",
    "CitationRow",
    "Cited",
    "SourceRows",
    "citations_from_rows",
    "cited_of",
    "corrected_cited",
    "first_row",
    "fix_row",
    "fold",
    "source_detail",
    "sources_list",
    "summary",
]

# ``source_citations.fix``: what made the row.
FIRST = ""  # the record itself, known from its own seq
CORRECTED = "corrected"
RETRACTED = "retracted"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Cited:
    """What the view keeps of a record's effective members; ``name`` None: it cites no source."""

    party: str | None
    topic: str | None
    occurred_at: str
    name: str | None
    kind: str | None
    url: str | None
    reported_at: str | None
    #: ``source.document``: the SHA-256 of the archived copy (docs/documents.md).
    document: str | None = None


def cited_of(party: str | None, topic: str | None, occurred_at: str, source: object) -> Cited:
    """The members of a record (or draft) that the view reads."""
    if not isinstance(source, Mapping):
        return Cited(party, topic, occurred_at, None, None, None, None)
    return Cited(
        party,
        topic,
        occurred_at,
        _text(source.get("name")),
        _text(source.get("kind")),
        _text(source.get("url")),
        _text(source.get("reported_at")),
        _text(source.get("document")),
    )


def _cited_of_record(record: Record) -> Cited:
    return cited_of(record.party, record.topic, record.occurred_at, record.source)


def corrected_cited(cited: Cited, changes: Mapping[str, Any]) -> Cited:
    """``cited`` with the members a ``record.corrected`` replaces (format §6);
    ``data`` holds nothing the view reads."""
    out = cited
    if "source" in changes:
        source = cited_of(None, None, "", changes["source"])
        out = replace(
            out,
            name=source.name,
            kind=source.kind,
            url=source.url,
            reported_at=source.reported_at,
            document=source.document,
        )
    if "party" in changes:
        out = replace(out, party=_text(changes["party"]))
    if "topic" in changes:
        out = replace(out, topic=_text(changes["topic"]))
    if "occurred_at" in changes and isinstance(changes["occurred_at"], str):
        out = replace(out, occurred_at=changes["occurred_at"])
    return out


@dataclass(frozen=True, slots=True)
class CitationRow:
    """A ``source_citations`` row: the record at ``target_seq`` as known from
    ``known_from``; ``fix`` says what made it (``FIRST``, ``CORRECTED``, ``RETRACTED``)."""

    target_seq: int
    known_from: int
    fix: str
    cited: Cited

    def values(self) -> tuple[Any, ...]:
        """The columns after ``ledger_id``, in the table's order."""
        c = self.cited
        return (
            self.target_seq,
            self.known_from,
            self.fix,
            c.name,
            c.kind,
            c.url,
            c.reported_at,
            c.party,
            c.topic,
            c.occurred_at,
            c.document,
        )

    @classmethod
    def of_values(cls, values: Sequence[Any]) -> CitationRow:
        """A row read back: ``values`` as ``values`` returns them."""
        target, known_from, fix, *members = values
        name, kind, url, reported_at, party, topic, occurred_at, document = members
        cited = Cited(party, topic, occurred_at, name, kind, url, reported_at, document)
        return cls(int(target), int(known_from), fix, cited)


def first_row(seq: int, cited: Cited) -> CitationRow | None:
    """The row a new record makes: one only if it cites a source."""
    if cited.name is None:
        return None
    return CitationRow(seq, seq, FIRST, cited)


def fix_row(
    fix_seq: int, kind: str, target_seq: int, effective: Cited, changes: object
) -> CitationRow:
    """The row a fix at ``fix_seq`` makes for its target, whose effective members
    before it are ``effective``."""
    if kind == "record.retracted":
        return CitationRow(target_seq, fix_seq, RETRACTED, effective)
    replaced = changes if isinstance(changes, Mapping) else {}
    return CitationRow(target_seq, fix_seq, CORRECTED, corrected_cited(effective, replaced))


@dataclass
class SourceRows:
    """Derives the ``source_citations`` rows from records fed in seq order.

    ``record_at(seq)`` returns an earlier record: a fix needs its target, and
    only fixes ask. Only fixed targets are kept (their effective members).
    """

    record_at: Callable[[int], Record]
    _effective: dict[int, Cited] = field(default_factory=dict)
    _retracted: set[int] = field(default_factory=set)

    def add(self, record: Record) -> list[CitationRow]:
        """Feed the next record; the rows it makes."""
        rows = []
        first = first_row(record.seq, _cited_of_record(record))
        if first is not None:
            rows.append(first)
        if record.type in FIX_TYPES:
            target_seq = record.data.get("target_seq")
            # The append refuses a fix of a missing, later, fix or retracted record.
            if (
                isinstance(target_seq, int)
                and 0 < target_seq < record.seq
                and target_seq not in self._retracted
            ):
                effective = self._effective.get(target_seq)
                if effective is None:
                    target = self.record_at(target_seq)
                    if target.type in FIX_TYPES:
                        return rows
                    effective = _cited_of_record(target)
                row = fix_row(
                    record.seq, record.type, target_seq, effective, record.data.get("changes")
                )
                rows.append(row)
                self._effective[target_seq] = row.cited
                if row.fix == RETRACTED:
                    self._retracted.add(target_seq)
        return rows


@dataclass(frozen=True, slots=True)
class Citation:
    """One record citing a source, with its effective members and its fixes."""

    seq: int
    id: str
    type: str
    cited: Cited
    corrected_by: tuple[int, ...] = ()
    retracted_by: int | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.cited
        out: dict[str, Any] = {"seq": self.seq, "id": self.id, "type": self.type}
        if c.party is not None:
            out["party"] = c.party
        if c.topic is not None:
            out["topic"] = c.topic
        out["occurred_at"] = c.occurred_at
        out["kind"] = c.kind
        if c.url is not None:
            out["url"] = c.url
        if c.reported_at is not None:
            out["reported_at"] = c.reported_at
        if c.document is not None:
            out["document"] = c.document
        out["corrected_by"] = list(self.corrected_by)
        if self.retracted_by is not None:
            out["retracted_by"] = self.retracted_by
        return out


# name -> its citations in seq order
SourcesView = dict[str, list[Citation]]


def fold(records: Iterable[Record]) -> SourcesView:
    """The sources view at the head of ``records`` (the definition).

    Fixes apply as in format §6: a fix naming a target that is missing, later,
    itself a fix or already retracted is ignored (the server refuses them).
    """
    ordered = sorted(records, key=lambda r: r.seq)
    current: dict[int, Record] = {}
    corrected_by: dict[int, list[int]] = {}
    retracted_by: dict[int, int] = {}
    for record in ordered:
        current[record.seq] = record
        if record.type not in FIX_TYPES:
            continue
        target = record.data.get("target_seq")
        if (
            not isinstance(target, int)
            or target not in current
            or target >= record.seq
            or current[target].type in FIX_TYPES
            or target in retracted_by
        ):
            continue
        if record.type == "record.retracted":
            retracted_by[target] = record.seq
            continue
        corrected_by.setdefault(target, []).append(record.seq)
        changes = record.data.get("changes")
        if isinstance(changes, dict):
            fixed = current[target]
            members = ("occurred_at", "data", "source", "party", "topic")
            current[target] = replace(fixed, **{m: changes[m] for m in members if m in changes})
    view: SourcesView = {}
    for seq, record in sorted(current.items()):
        cited = _cited_of_record(record)
        if cited.name is None:
            continue
        view.setdefault(cited.name, []).append(
            Citation(
                seq,
                record.id,
                record.type,
                cited,
                tuple(corrected_by.get(seq, ())),
                retracted_by.get(seq),
            )
        )
    return view


def citations_from_rows(
    rows: Iterable[CitationRow], meta: Mapping[int, tuple[str, str]]
) -> SourcesView:
    """The view the rows of one ledger make; ``meta`` maps a seq to its record's (id, type).

    A record's row with the greatest ``known_from`` holds its effective members.
    """
    by_target: dict[int, list[CitationRow]] = {}
    for row in rows:
        by_target.setdefault(row.target_seq, []).append(row)
    view: SourcesView = {}
    for target in sorted(by_target):
        versions = sorted(by_target[target], key=lambda r: r.known_from)
        latest = versions[-1]
        name = latest.cited.name
        if name is None:
            continue
        event_id, kind = meta[target]
        retracted = [r.known_from for r in versions if r.fix == RETRACTED]
        view.setdefault(name, []).append(
            Citation(
                target,
                event_id,
                kind,
                latest.cited,
                tuple(r.known_from for r in versions if r.fix == CORRECTED),
                retracted[0] if retracted else None,
            )
        )
    return view


def _distinct(values: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value is not None and value not in out:
            out.append(value)
    return out


def summary(name: str, citations: Sequence[Citation]) -> dict[str, Any]:
    """A source's summary: kinds, urls and archived documents of every citation
    (first-cited order), parties, topics and the count of the citations not retracted."""
    ordered = sorted(citations, key=lambda c: c.seq)
    standing = [c for c in ordered if c.retracted_by is None]
    return {
        "name": name,
        "kinds": _distinct(c.cited.kind for c in ordered),
        "urls": _distinct(c.cited.url for c in ordered),
        "documents": _distinct(c.cited.document for c in ordered),
        "records": len(standing),
        "parties": sorted({c.cited.party for c in standing if c.cited.party is not None}),
        "topics": sorted({c.cited.topic for c in standing if c.cited.topic is not None}),
        "first_seq": ordered[0].seq,
        "last_seq": ordered[-1].seq,
    }


def sources_list(
    ledger: str, tree_size: int, view: Mapping[str, Sequence[Citation]]
) -> dict[str, Any]:
    """``GET /v1/ledgers/{ledger}/sources``: every source, sorted by name."""
    return {
        "ledger": ledger,
        "tree_size": tree_size,
        "sources": [summary(name, view[name]) for name in sorted(view) if view[name]],
    }


def source_detail(
    ledger: str, tree_size: int, name: str, citations: Sequence[Citation]
) -> dict[str, Any]:
    """``GET /v1/ledgers/{ledger}/sources/{name}``: the summary and every citation."""
    ordered = sorted(citations, key=lambda c: c.seq)
    return {
        "ledger": ledger,
        "tree_size": tree_size,
        **summary(name, ordered),
        "citations": [c.to_dict() for c in ordered],
    }
