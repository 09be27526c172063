"""The sources view (docs/sources.md): the fold, and the projection rows that read back to it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.records import Record
from ledger.core.sources import (
    CitationRow,
    SourceRows,
    citations_from_rows,
    fold,
    source_detail,
    sources_list,
)
from tests.core.test_positions import DEMO, sealed

NAMES = ["CNN", "The New York Times", "Kyiv Independent", "Офіс Президента", "Le Monde"]
parties = st.sampled_from(["US", "UA", "EU"])
topics = st.sampled_from(["revenue-share", "security-guarantees"])
# Archived copies sources may cite, by their SHA-256 (a ledger must hold them).
DOCUMENTS = {hashlib.sha256(text).hexdigest(): text for text in (b"archived 1", b"archived 2")}
days = st.sampled_from(["2025-02-10", "2025-02-12", "2025-02-24"])


@st.composite
def sources(draw: st.DrawFn) -> dict[str, Any]:
    source: dict[str, Any] = {
        "name": draw(st.sampled_from(NAMES)),
        "kind": draw(st.sampled_from(["official", "media", "anonymous", "document"])),
    }
    if draw(st.booleans()):
        source["url"] = f"https://example.org/{draw(st.integers(0, 2))}"
    if draw(st.booleans()):
        source["reported_at"] = draw(days)
    if draw(st.booleans()):
        source["document"] = draw(st.sampled_from(sorted(DOCUMENTS)))
    return source


@st.composite
def ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records with and without sources, and fixes of any earlier ordinary
    record not yet retracted (the server's rule), in any order."""
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        kind = draw(st.sampled_from(["stated", "withdrawn", "draft", "reg", "fix", "fix"]))
        if kind == "fix":
            retracted = {e["data"]["target_seq"] for e in events if e["type"] == "record.retracted"}
            targets = [
                seq
                for seq, e in enumerate(events, start=1)
                if not e["type"].startswith("record.") and seq not in retracted
            ]
            if not targets:
                continue
            target = draw(st.sampled_from(targets))
            if draw(st.integers(0, 3)) == 0:
                fix = {"type": "record.retracted", "data": {"target_seq": target, "reason": "x"}}
            else:
                # Only changes that leave the target a valid event of its type.
                members = ["source", "party", "occurred_at"]
                if events[target - 1]["type"].startswith("position."):
                    members.append("topic")
                member = draw(st.sampled_from(members))
                value = {
                    "source": sources(),
                    "party": parties,
                    "topic": topics,
                    "occurred_at": days.map(lambda d: f"{d}T00:00:00Z"),
                }[member]
                changes = {member: draw(value)}
                fix = {
                    "type": "record.corrected",
                    "data": {"target_seq": target, "reason": "x", "changes": changes},
                }
            fix["occurred_at"] = "2025-03-01"
            if draw(st.integers(0, 4)) == 0:
                fix["source"] = draw(sources())  # a fix may cite a source itself
            events.append(fix)
            continue
        event: dict[str, Any] = {"occurred_at": draw(days), "party": draw(parties)}
        if kind == "reg":
            event.update(type="party.registered", data={"name": "x"})
        elif kind == "draft":
            event.update(type="draft.presented", data={"title": "t", "summary": "s"})
        elif kind == "withdrawn":
            event.update(type="position.withdrawn", topic=draw(topics), data={"summary": "s"})
        else:
            event.update(type="position.stated", topic=draw(topics))
            event["data"] = {"stance": "support", "summary": "s"}
        # position.stated requires a source; the others may cite one.
        if kind == "stated" or draw(st.booleans()):
            event["source"] = draw(sources())
        events.append(event)
    return events


def derived_rows(records: list[Record]) -> list[CitationRow]:
    by_seq = {r.seq: r for r in records}
    rows = SourceRows(record_at=by_seq.__getitem__)
    return [row for record in records for row in rows.add(record)]


def meta(records: list[Record]) -> dict[int, tuple[str, str]]:
    return {r.seq: (r.id, r.type) for r in records}


@settings(max_examples=300)
@given(events=ledgers())
def test_the_rows_read_back_to_the_fold(events: list[dict[str, Any]]) -> None:
    records = sealed(events)
    rows = derived_rows(records)
    assert citations_from_rows(rows, meta(records)) == fold(records)


@settings(max_examples=200)
@given(events=ledgers(), cut=st.integers(0, 25))
def test_rows_are_only_added_one_per_citing_record_and_one_per_fix(
    events: list[dict[str, Any]], cut: int
) -> None:
    records = sealed(events)
    rows = derived_rows(records)
    keys = [(r.target_seq, r.known_from) for r in rows]
    assert len(keys) == len(set(keys))
    citing = [r for r in records if r.source is not None]
    fixes = [r for r in records if r.type.startswith("record.")]
    assert len(rows) == len(citing) + len(fixes)
    # What the first records make does not change as more follow.
    head = sealed(events[:cut])
    assert derived_rows(head) == [r for r in rows if r.known_from <= cut]


@settings(max_examples=200)
@given(events=ledgers())
def test_the_summary_follows_the_citations(events: list[dict[str, Any]]) -> None:
    records = sealed(events)
    view = fold(records)
    document = sources_list("talks", len(records), view)
    assert [s["name"] for s in document["sources"]] == sorted(view)
    for summary in document["sources"]:
        citations = view[summary["name"]]
        standing = [c for c in citations if c.retracted_by is None]
        assert summary["records"] == len(standing)
        assert summary["parties"] == sorted({c.cited.party for c in standing if c.cited.party})
        assert summary["first_seq"] == citations[0].seq
        assert summary["last_seq"] == citations[-1].seq
        assert set(summary["kinds"]) == {c.cited.kind for c in citations}
        assert len(summary["urls"]) == len(set(summary["urls"]))
        cited = [c.cited.document for c in citations if c.cited.document is not None]
        assert summary["documents"] == list(dict.fromkeys(cited))


def stated(source: dict[str, Any] | None, party: str = "US") -> dict[str, Any]:
    """A position citing ``source``; with None, a withdrawal citing none."""
    event: dict[str, Any] = {
        "type": "position.withdrawn",
        "party": party,
        "topic": "revenue-share",
        "occurred_at": "2025-02-10",
        "data": {"summary": "s"},
    }
    if source is not None:
        event.update(type="position.stated", source=source)
        event["data"]["stance"] = "demand"
    return event


def correct(target: int, changes: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "record.corrected",
        "occurred_at": "2025-03-01",
        "data": {"target_seq": target, "reason": "x", "changes": changes},
    }


def retract(target: int) -> dict[str, Any]:
    return {
        "type": "record.retracted",
        "occurred_at": "2025-03-01",
        "data": {"target_seq": target, "reason": "x"},
    }


CNN = {"name": "CNN", "kind": "media", "url": "https://cnn.com/a"}
NYT = {"name": "The New York Times", "kind": "media"}


def test_a_corrected_source_moves_the_citation_and_lists_every_correction() -> None:
    records = sealed(
        [
            stated(None),  # 1: no source yet
            correct(1, {"party": "UA"}),  # 2
            correct(1, {"source": CNN}),  # 3: now cites CNN
            stated(CNN, party="EU"),  # 4
            correct(4, {"source": NYT}),  # 5: moves to the NYT
        ]
    )
    view = fold(records)
    assert sorted(view) == ["CNN", "The New York Times"]
    detail = source_detail("talks", 5, "CNN", view["CNN"])
    assert detail["records"] == 1 and detail["parties"] == ["UA"]
    (citation,) = detail["citations"]
    assert citation["seq"] == 1 and citation["corrected_by"] == [2, 3]
    assert citation["url"] == "https://cnn.com/a" and "retracted_by" not in citation
    assert [c.seq for c in view["The New York Times"]] == [4]


def test_a_retracted_citation_is_listed_flagged_and_not_counted() -> None:
    cnn_other = {"name": "CNN", "kind": "anonymous", "url": "https://cnn.com/b"}
    records = sealed([stated(CNN, party="UA"), stated(cnn_other), retract(1)])
    detail = source_detail("talks", 3, "CNN", fold(records)["CNN"])
    assert detail["records"] == 1
    assert detail["parties"] == ["US"]
    # kinds and urls describe every citation listed, retracted ones too.
    assert detail["kinds"] == ["media", "anonymous"]
    assert detail["urls"] == ["https://cnn.com/a", "https://cnn.com/b"]
    assert detail["documents"] == []
    assert (detail["first_seq"], detail["last_seq"]) == (1, 2)
    assert [c.get("retracted_by") for c in detail["citations"]] == [3, None]


def test_a_corrected_source_s_document_replaces_the_one_it_cited() -> None:
    archived = {**CNN, "document": "ab" * 32}
    rearchived = {**CNN, "document": "cd" * 32}
    records = sealed([stated(archived), correct(1, {"source": rearchived})])
    detail = source_detail("talks", 2, "CNN", fold(records)["CNN"])
    assert detail["documents"] == ["cd" * 32]
    assert detail["citations"][0]["document"] == "cd" * 32


def test_the_demo_sources() -> None:
    events = [json.loads(line) for line in DEMO.read_text().splitlines()]
    records = sealed(events)
    view = fold(records)
    assert citations_from_rows(derived_rows(records), meta(records)) == view
    # The correction at the end re-attributes the hardened revenue demand.
    (fix,) = [r for r in records if r.type == "record.corrected"]
    target = fix.data["target_seq"]
    assert target not in [c.seq for c in view.get("CNN", [])]
    nyt = {c.seq: c for c in view["The New York Times"]}
    assert nyt[target].corrected_by == (fix.seq,)
