"""Drafts and the canonical records spliced from them (``RecordFrame``).

The recorder hashes and stores the bytes ``RecordFrame.canonical_record``
splices; every verifier recomputes them from the record's members with
RFC 8785. These hold the two equal, byte for byte.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.canonical import reference_canonical_bytes
from ledger.core.positions import claimant_of
from ledger.core.records import EventDraft, RecordFrame

# Everything but lone surrogates (no UTF-8 form): astral and high-BMP
# characters, controls, quotes and backslashes included.
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(text, values, max_size=5)
hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
# format §1.4: the member's shape (whether the signature holds is not the splice's business).
authors = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z"),
        "key_id": st.text(alphabet="0123456789abcdef", min_size=8, max_size=8),
        "sig": st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode()),
    }
)


@st.composite
def drafts(draw: st.DrawFn) -> EventDraft:
    data = draw(objects)
    if draw(st.booleans()):
        data["claimed_by"] = draw(text | st.integers(0, 9))
    return EventDraft.of(
        id=str(draw(st.uuids())),
        type=draw(st.sampled_from(["position.stated", "position.withdrawn"]) | text),
        occurred_at=draw(st.sampled_from(["2025-02-24T00:00:00Z", "2025-04-30T17:05:09Z"])),
        data=data,
        party=draw(st.none() | text),
        topic=draw(st.none() | text),
        source=draw(st.none() | objects),
        author=draw(st.none() | authors),
    )


@settings(max_examples=400)
@given(
    draft=drafts(),
    ledger=st.sampled_from(["talks", "us-ua-minerals-2025"]),
    actor=text,
    seq=st.integers(1, 2**53 - 1),
    prev=hex64,
)
def test_the_spliced_record_is_the_rfc8785_serialization_of_the_sealed_one(
    draft: EventDraft, ledger: str, actor: str, seq: int, prev: str
) -> None:
    recorded_at = "2026-11-27T08:00:00.123456Z"
    frame = RecordFrame.of(ledger=ledger, actor=actor, recorded_at=recorded_at)
    record = draft.seal(ledger=ledger, seq=seq, prev=prev, recorded_at=recorded_at, actor=actor)
    spliced = frame.canonical_record(draft, seq=seq, prev=prev)
    assert spliced == reference_canonical_bytes(record.to_dict())
    assert spliced == record.canonical()


@settings(max_examples=200)
@given(draft=drafts())
def test_the_claimant_is_the_sealed_records(draft: EventDraft) -> None:
    record = draft.seal(ledger="talks", seq=1, prev="0" * 64, recorded_at="x", actor="a")
    assert draft.claimant == claimant_of(record)


@pytest.mark.parametrize(
    "summary",
    [
        'quotes "claimed_by" in prose',  # escaped inside a string: not a member
        "no claim at all",
    ],
)
def test_a_claimed_by_inside_a_string_is_no_claimant(summary: str) -> None:
    draft = EventDraft.of(
        id="00000000-0000-4000-8000-000000000001",
        type="position.stated",
        occurred_at="2025-02-24T00:00:00Z",
        data={"stance": "demand", "summary": summary},
        party="US",
        topic="revenue-share",
    )
    assert draft.claimant is None


def test_a_nested_claimed_by_is_no_claimant() -> None:
    data: dict[str, Any] = {"stance": "demand", "terms": {"claimed_by": "UA"}}
    draft = EventDraft.of(
        id="00000000-0000-4000-8000-000000000001",
        type="position.stated",
        occurred_at="2025-02-24T00:00:00Z",
        data=data,
    )
    assert draft.claimant is None
    claimed = EventDraft.of(
        id="00000000-0000-4000-8000-000000000002",
        type="position.stated",
        occurred_at="2025-02-24T00:00:00Z",
        data={**data, "claimed_by": "UA"},
    )
    assert claimed.claimant == "UA"


@given(data=objects, source=st.none() | objects)
def test_a_draft_decodes_to_the_values_it_was_built_from(
    data: dict[str, Any], source: dict[str, Any] | None
) -> None:
    strict = EventDraft.of(id="i", type="t", occurred_at="o", data=data, source=source, strict=True)
    checked = EventDraft.of(id="i", type="t", occurred_at="o", data=data, source=source)
    assert strict == checked
    assert strict.data == data
    assert strict.source == source
    assert strict.data is not strict.data  # a fresh value: a caller's edit changes nothing
