"""The positions fold of format §6, against a literal reading of the spec."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.errors import VerificationError
from ledger.core.hashing import GENESIS_PREV
from ledger.core.positions import (
    fold,
    sign_snapshot,
    snapshot_document,
    verify_snapshot_signature,
)
from ledger.core.records import EventDraft, Record
from ledger.core.signing import Signer
from ledger.core.times import parse_occurred_at

DEMO = Path(__file__).resolve().parents[2] / "ledger" / "demo" / "us-ua-minerals-2025.jsonl"
STANCES = ["support", "oppose", "demand", "offer", "conditional", "reject", "undecided"]


def sealed(events: list[dict[str, Any]], ledger: str = "talks") -> list[Record]:
    records = []
    for seq, event in enumerate(events, start=1):
        draft = EventDraft.of(
            id=f"00000000-0000-4000-8000-{seq:012d}",
            type=event["type"],
            occurred_at=parse_occurred_at(event["occurred_at"]),
            data=event["data"],
            party=event.get("party"),
            topic=event.get("topic"),
            source=event.get("source"),
        )
        records.append(
            draft.seal(
                ledger=ledger,
                seq=seq,
                prev=GENESIS_PREV,
                recorded_at="2026-01-01T00:00:00.000000Z",
                actor="t",
            )
        )
    return records


def reference_fold(
    records: list[Record], as_of: str | None, known_at: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """format §6 step by step, on plain dicts, written independently of the module."""
    rows = [copy.deepcopy(r.to_dict()) for r in records if known_at is None or r.seq <= known_at]
    by_seq = {row["seq"]: row for row in rows}
    dropped: set[int] = set()
    for row in rows:
        if row["type"] == "record.corrected":
            target = by_seq.get(row["data"]["target_seq"])
            if target is not None and target["seq"] < row["seq"]:
                target.update(row["data"]["changes"])
        elif row["type"] == "record.retracted":
            dropped.add(row["data"]["target_seq"])
    kept = [
        row
        for row in rows
        if row["seq"] not in dropped
        and row["type"] in ("position.stated", "position.withdrawn")
        and (as_of is None or row["occurred_at"] <= as_of)
    ]
    state: dict[str, Any] = {}
    claims: dict[str, Any] = {}
    for row in sorted(kept, key=lambda r: (r["occurred_at"], r["seq"])):  # last one wins
        cell: dict[str, Any] = {
            "stance": "withdrawn" if row["type"] == "position.withdrawn" else row["data"]["stance"],
            "summary": row["data"]["summary"],
            "since": row["occurred_at"],
            "seq": row["seq"],
        }
        if row["type"] == "position.stated" and "terms" in row["data"]:
            cell["terms"] = row["data"]["terms"]
        if "source" in row:
            cell["source"] = row["source"]
        claimant = row["data"].get("claimed_by") if row["type"] == "position.stated" else None
        if claimant is None:
            state.setdefault(row["party"], {})[row["topic"]] = cell
        else:
            claims.setdefault(row["party"], {}).setdefault(row["topic"], {})[claimant] = cell
    return state, claims


# -- random ledgers ---------------------------------------------------------------

parties = st.sampled_from(["US", "UA", "EU"])
topics = st.sampled_from(["security-guarantees", "revenue-share", "signing"])
days = st.integers(min_value=1, max_value=28).map(lambda d: f"2025-02-{d:02d}")


@st.composite
def ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        kind = draw(st.sampled_from(["stated", "stated", "claim", "withdrawn", "fix", "reg"]))
        if kind == "reg":
            events.append(
                {
                    "type": "party.registered",
                    "party": draw(parties),
                    "occurred_at": "2025-02-01",
                    "data": {"name": "x"},
                }
            )
        elif kind in ("stated", "claim"):
            data: dict[str, Any] = {
                "stance": draw(st.sampled_from(STANCES)),
                "summary": f"s{len(events)}",
            }
            if draw(st.booleans()):
                data["terms"] = {"share_percent": draw(st.integers(0, 100))}
            if kind == "claim":
                data["claimed_by"] = draw(parties)
            event = {
                "type": "position.stated",
                "party": draw(parties),
                "topic": draw(topics),
                "occurred_at": draw(days),
                "data": data,
            }
            if draw(st.booleans()):
                event["source"] = {"name": "CNN", "kind": "media"}
            events.append(event)
        elif kind == "withdrawn":
            events.append(
                {
                    "type": "position.withdrawn",
                    "party": draw(parties),
                    "topic": draw(topics),
                    "occurred_at": draw(days),
                    "data": {"summary": f"w{len(events)}"},
                }
            )
        else:
            # Fix an earlier ordinary record that is not yet retracted (the server's rule).
            retracted = {e["data"]["target_seq"] for e in events if e["type"] == "record.retracted"}
            targets = [
                seq
                for seq, e in enumerate(events, start=1)
                if e["type"].startswith("position.") and seq not in retracted
            ]
            if not targets:
                continue
            target = draw(st.sampled_from(targets))
            if draw(st.booleans()):
                events.append(
                    {
                        "type": "record.retracted",
                        "occurred_at": "2025-03-01",
                        "data": {"target_seq": target, "reason": "wrong"},
                    }
                )
            else:
                changes: dict[str, Any] = draw(
                    st.sampled_from(
                        [
                            {"occurred_at": draw(days)},
                            {"party": draw(parties)},
                            {"topic": draw(topics)},
                            {"source": {"name": "NYT", "kind": "media"}},
                        ]
                    )
                )
                changes = {
                    k: (parse_occurred_at(v) if k == "occurred_at" else v)
                    for k, v in changes.items()
                }
                events.append(
                    {
                        "type": "record.corrected",
                        "occurred_at": "2025-03-01",
                        "data": {"target_seq": target, "reason": "fix", "changes": changes},
                    }
                )
    return events


@settings(max_examples=300)
@given(
    events=ledgers(),
    as_of=st.none() | days.map(lambda d: f"{d}T12:00:00Z"),
    known_fraction=st.none() | st.floats(min_value=0, max_value=1),
)
def test_the_fold_equals_a_literal_reading_of_spec_section_6(
    events: list[dict[str, Any]], as_of: str | None, known_fraction: float | None
) -> None:
    records = sealed(events)
    known_at = None if known_fraction is None else int(known_fraction * len(records))
    positions = fold(records, as_of=as_of, known_at=known_at)
    state, claims = reference_fold(records, as_of, known_at)
    assert positions.state_dict() == state
    assert positions.claims_dict() == claims


def test_claims_are_kept_apart_from_a_partys_own_statements() -> None:
    events = [
        {
            "type": "position.stated",
            "party": "UA",
            "topic": "revenue-share",
            "occurred_at": "2025-02-10",
            "data": {"stance": "support", "summary": "agreed", "claimed_by": "US"},
        },
        {
            "type": "position.stated",
            "party": "UA",
            "topic": "revenue-share",
            "occurred_at": "2025-02-15",
            "data": {"stance": "reject", "summary": "no"},
        },
    ]
    positions = fold(sealed(events))
    assert positions.state_dict()["UA"]["revenue-share"]["stance"] == "reject"
    assert positions.claims_dict()["UA"]["revenue-share"]["US"]["stance"] == "support"


def test_out_of_order_occurred_at_is_ordered_by_valid_time_then_seq() -> None:
    later_first = [
        {
            "type": "position.stated",
            "party": "US",
            "topic": "signing",
            "occurred_at": "2025-02-20",
            "data": {"stance": "demand", "summary": "new"},
        },
        {
            "type": "position.stated",
            "party": "US",
            "topic": "signing",
            "occurred_at": "2025-02-12",
            "data": {"stance": "offer", "summary": "old, told late"},
        },
    ]
    assert fold(sealed(later_first)).state["US"]["signing"].stance == "demand"
    assert fold(sealed(later_first), as_of="2025-02-15T00:00:00Z").state["US"]["signing"].seq == 2


def demo_records() -> list[Record]:
    return sealed([json.loads(line) for line in DEMO.read_text().splitlines()])


def test_the_demo_as_of_24_february_shows_us_opposition_and_the_fund_draft() -> None:
    records = demo_records()
    positions = fold(records, as_of="2025-02-24T23:59:59Z")
    assert positions.state["US"]["security-guarantees"].stance == "oppose"
    fund_drafts = [
        r
        for r in records
        if r.type == "draft.presented"
        and r.party == "UA"
        and "fund" in r.data["summary"].lower()
        and r.occurred_at <= "2025-02-24T23:59:59Z"
    ]
    assert fund_drafts
    assert positions.state["US"]["revenue-share"].terms["share_percent"] == 100
    # The correction (seq 23) re-attributed the 100% demand to the NYT.
    assert positions.state["US"]["revenue-share"].source is not None
    assert "New York Times" in positions.state["US"]["revenue-share"].source["name"]
    assert positions.claims["UA"]["revenue-share"]["US"].stance == "support"


def test_the_demo_as_of_13_february_shows_the_earlier_positions() -> None:
    positions = fold(demo_records(), as_of="2025-02-13T23:59:59Z")
    assert positions.state["US"]["revenue-share"].terms["share_percent"] == 50
    assert positions.state["US"]["signing"].stance == "demand"
    assert "security-guarantees" not in positions.state.get("US", {})
    assert "UA" not in positions.state  # Kyiv's refusal came later


def test_a_correction_is_invisible_to_a_snapshot_known_before_it() -> None:
    records = demo_records()
    before = fold(records, known_at=22).state["US"]["revenue-share"].source
    after = fold(records, known_at=23).state["US"]["revenue-share"].source
    assert before is not None and after is not None
    assert before["name"] != after["name"]


def test_a_signed_snapshot_verifies_and_resists_tampering() -> None:
    signer = Signer.generate("ledger.test")
    document = snapshot_document(
        ledger="talks",
        as_of="2025-02-24T23:59:59Z",
        known_at=23,
        merkle_root=b"\x01" * 32,
        positions=fold(demo_records()),
    )
    signed = sign_snapshot(document, signer)
    assert list(signed)[:3] == ["ledger", "as_of", "known_at"]
    verify_snapshot_signature(signed, signer.verifier)
    tampered = copy.deepcopy(signed)
    tampered["state"]["US"]["security-guarantees"]["stance"] = "support"
    with pytest.raises(VerificationError):
        verify_snapshot_signature(tampered, signer.verifier)
    with pytest.raises(VerificationError):
        verify_snapshot_signature(signed, Signer.generate("ledger.test").verifier)
    unbounded = snapshot_document(
        ledger="talks", as_of=None, known_at=0, merkle_root=b"\x00" * 32, positions=fold([])
    )
    assert "as_of" not in unbounded and unbounded["known_at"] == 0
