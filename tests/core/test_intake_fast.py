"""Intake's shortcuts give what the general code gives: ids as RFC 9562 lays
them out, ``occurred_at`` as ``parse_instant`` and ``format_occurred_at`` read and
store it (errors included), whether remembered or not."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import intake
from ledger.core.canonical import reference_canonical_bytes
from ledger.core.records import UUID_PATTERN
from ledger.core.times import format_occurred_at, parse_instant
from ledger.intake import new_event_ids


def version_7(pool: bytes, now_ms: int) -> str:
    """What RFC 9562 makes of ``now_ms`` and 16 random bytes: the time in the
    first 48 bits, version 7, variant 10, the other 74 bits kept."""
    value = int.from_bytes(pool, "big")
    value &= ~(((1 << 48) - 1) << 80) & ~(0xF << 76) & ~(0x3 << 62)
    value |= now_ms << 80 | 7 << 76 | 0b10 << 62
    return str(uuid.UUID(int=value))


@settings(max_examples=300, deadline=None)
@given(
    pool=st.binary(min_size=0, max_size=16 * 20).map(lambda b: b[: len(b) - len(b) % 16]),
    now_ms=st.integers(min_value=0, max_value=(1 << 48) - 1),
)
def test_ids_are_what_rfc_9562_makes_of_the_time_and_the_random_bytes(
    pool: bytes, now_ms: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(intake.os, "urandom", lambda n: pool if n == len(pool) else b"")
        ids = list(new_event_ids(len(pool) // 16, now_ms=now_ms))
    assert ids == [version_7(pool[at : at + 16], now_ms) for at in range(0, len(pool), 16)]


def test_ids_are_lowercase_version_7_uuids_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = list(new_event_ids(200))
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 200
    for text in ids:
        assert UUID_PATTERN.match(text)
        parsed = uuid.UUID(text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
        assert before <= parsed.int >> 80 <= after


def test_ids_drawn_later_sort_later() -> None:
    # What keeps a ledger's id index appending at its right edge.
    earlier = list(new_event_ids(50, now_ms=1_700_000_000_000))
    later = list(new_event_ids(50, now_ms=1_700_000_000_001))
    assert max(earlier) < min(later)


def test_extreme_bytes_keep_their_other_bits() -> None:
    for byte in (b"\x00", b"\xff", b"\x0f", b"\xf0", b"\x3f", b"\xc0"):
        pool = byte * 16
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(intake.os, "urandom", lambda n, pool=pool: pool)
            (text,) = new_event_ids(1, now_ms=0xA1B2C3D4E5F6)
        assert text == version_7(pool, 0xA1B2C3D4E5F6)
        assert text.startswith("a1b2c3d4-e5f6-7")


def reference(text: object) -> object:
    try:
        moment = parse_instant(text)  # type: ignore[arg-type]
    except ValueError as e:
        return ("refused", str(e))
    return (moment, moment.tzinfo, format_occurred_at(moment))


def shortcut(text: object) -> object:
    try:
        moment, stored = intake._read_occurred_at(text)
    except ValueError as e:
        return ("refused", str(e))
    return (moment, moment.tzinfo, stored)


_digits = st.integers(0, 9999)
_fields = st.tuples(
    _digits, st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61)
)


@st.composite
def instants(draw: st.DrawFn) -> str:
    year, month, day, hour, minute = draw(_fields)
    second = draw(st.integers(0, 61))
    date = f"{year:04d}-{month:02d}-{day:02d}"
    shape = draw(
        st.sampled_from(
            [
                "{d}",
                "{d}T{t}Z",
                "{d}t{t}z",
                "{d} {t}Z",
                "{d}T{t}+01:30",
                "{d}T{t}-00:00",
                "{d}T{t}+24:00",
                "{d}T{t}.5Z",
                "{d}T{t}",
                "{d}T{t}Z\n",
                " {d}",
                "{d}T{t}ZZ",
            ]
        )
    )
    text = shape.format(d=date, t=f"{hour:02d}:{minute:02d}:{second:02d}")
    if draw(st.integers(0, 20)) == 0:  # a digit that is not ASCII
        text = text.replace("1", "\u0661", 1)
    return text


@settings(max_examples=2000, deadline=None)
@given(text=instants())
def test_occurred_at_reads_as_parse_instant_reads_it(text: str) -> None:
    expected = reference(text)
    assert shortcut(text) == expected
    assert shortcut(text) == expected  # and again, now remembered


@pytest.mark.parametrize(
    "text",
    [
        "2025-02-24",
        "0001-01-01",
        "9999-12-31",
        "0000-01-01",
        "2025-02-29",
        "2024-02-29",
        "2025-02-24T18:46:06Z",
        "2025-02-24T23:59:60Z",
        "2025-02-24T24:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "2025-02-24T18:46:06.123Z",
        "",
        12,
        None,
    ],
)
def test_chosen_occurred_at_values(text: object) -> None:
    assert shortcut(text) == reference(text)
    assert shortcut(text) == reference(text)


def test_the_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "_OCCURRED", {})
    monkeypatch.setattr(intake, "_OCCURRED_LIMIT", 3)
    for day in range(1, 10):
        moment, stored = intake._read_occurred_at(f"2025-01-{day:02d}")
        assert moment == datetime.fromisoformat(f"2025-01-{day:02d}T00:00:00+00:00")
        assert stored == f"2025-01-{day:02d}T00:00:00Z"
        assert len(intake._OCCURRED) <= 3


def test_posted_events_seal_to_the_canonical_bytes_of_the_checked_path() -> None:
    # Drafts from a parsed body encode their values as strict (skipping the
    # type walk); drafts handed in as Python values do not, and both give the
    # same bytes.
    reader = intake.Intake(schemas=intake.EventSchemas.bundled())
    body = (
        b'[{"id":"00000000-0000-4000-8000-000000000001","type":"position.stated",'
        b'"occurred_at":"2025-02-24","party":"US",'
        b'"topic":"revenue-share","data":{"stance":"demand","summary":"Half \\u00e9",'
        b'"terms":{"share_percent":50}},"source":{"name":"NYT","kind":"media"}}]'
    )
    (posted,) = reader.parse(body).drafts
    (handed,) = [reader.draft(event) for event in orjson.loads(body)]
    assert posted == handed
    seal = {"ledger": "talks", "seq": 1, "prev": "0" * 64, "recorded_at": "x", "actor": "a"}
    fast, checked = posted.seal(**seal), handed.seal(**seal)
    assert fast == checked
    assert fast.canonical() == checked.canonical() == reference_canonical_bytes(fast.to_dict())
