"""Times (format §1): clients send a bare date or RFC 3339 with an explicit
offset and whole seconds; the server stores fixed-width UTC forms whose string
order is time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.times import (
    OCCURRED_AT_PATTERN,
    RECORDED_AT_PATTERN,
    format_occurred_at,
    format_recorded_at,
    parse_instant,
    parse_occurred_at,
)

PROPERTY = settings(database=None, max_examples=300, deadline=None)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2025-02-24", "2025-02-24T00:00:00Z"),
        ("2024-02-29", "2024-02-29T00:00:00Z"),
        ("2025-02-24T10:00:00Z", "2025-02-24T10:00:00Z"),
        ("2025-02-24t10:00:00z", "2025-02-24T10:00:00Z"),
        ("2025-02-24T10:00:00+01:00", "2025-02-24T09:00:00Z"),
        ("2025-02-24T10:00:00-05:30", "2025-02-24T15:30:00Z"),
        ("2025-02-24T00:30:00+02:00", "2025-02-23T22:30:00Z"),
        ("2025-12-31T23:00:00-01:00", "2026-01-01T00:00:00Z"),
        ("2025-02-24T10:00:00+00:00", "2025-02-24T10:00:00Z"),
        ("2025-02-24T10:00:00-00:00", "2025-02-24T10:00:00Z"),
        ("2025-02-24T10:00:00+23:59", "2025-02-23T10:01:00Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ("1000-01-01T00:00:00Z", "1000-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("0999-12-31", "0999-12-31T00:00:00Z"),
    ],
)
def test_accepted_forms_are_stored_in_fixed_utc_form(sent: str, stored: str) -> None:
    assert parse_occurred_at(sent) == stored
    assert OCCURRED_AT_PATTERN.match(stored)


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        ("2025-02-24T10:00:00.5Z", "fractional seconds"),
        ("2025-02-24T10:00:00.000Z", "fractional seconds, even zero"),
        ("2025-02-24T10:00:00.123456+01:00", "fractional seconds with an offset"),
        ("2025-02-24T10:00:00", "no offset"),
        ("2025-02-24T10:00", "no seconds, no offset"),
        ("2025-02-24T10:00Z", "no seconds"),
        ("2025-02-30", "February 30"),
        ("2025-02-29", "February 29 of a common year"),
        ("2025-02-30T10:00:00Z", "February 30 with a time"),
        ("2025-13-01", "month 13"),
        ("2025-00-10", "month 0"),
        ("2025-01-00", "day 0"),
        ("2025-02-24T24:00:00Z", "hour 24"),
        ("2025-02-24T10:60:00Z", "minute 60"),
        ("2016-12-31T23:59:60Z", "a leap second"),
        ("2025-02-24T10:00:00+24:00", "offset +24:00"),
        ("2025-02-24T10:00:00-24:00", "offset -24:00"),
        ("2025-02-24T10:00:00+23:60", "offset minute 60"),
        ("2025-02-24T10:00:00+0100", "offset without colon"),
        ("2025-02-24T10:00:00+01", "offset without minutes"),
        ("2025-02-24T10:00:00 Z", "space before Z"),
        ("2025-2-24", "one-digit month"),
        ("20250224", "basic format"),
        ("25-02-24", "two-digit year"),
        (" 2025-02-24", "leading space"),
        ("2025-02-24\n", "trailing newline"),
        ("2025-02-24T10:00:00Z\n", "trailing newline after a time"),
        ("", "empty"),
        ("yesterday", "prose"),
    ],
)
def test_refused_forms_raise_value_error(sent: str, why: str) -> None:
    with pytest.raises(ValueError):
        parse_occurred_at(sent)


def test_a_refusal_says_why_in_a_sentence() -> None:
    with pytest.raises(ValueError, match="fractional seconds"):
        parse_occurred_at("2025-02-24T10:00:00.5Z")
    with pytest.raises(ValueError, match="explicit offset"):
        parse_occurred_at("2025-02-24T10:00:00")


@pytest.mark.parametrize("value", [None, 20250224, b"2025-02-24"])
def test_a_value_that_is_not_a_string_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        parse_instant(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sent",
    [
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "0001-01-01T00:59:59+01:00",
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
def test_times_that_leave_the_calendar_in_utc_are_value_errors_not_overflow(sent: str) -> None:
    try:
        stored = parse_occurred_at(sent)
    except OverflowError:  # pragma: no cover - the failure this test is about
        pytest.fail("OverflowError escaped; callers only handle ValueError")
    except ValueError:
        return
    assert OCCURRED_AT_PATTERN.match(stored)


@pytest.mark.parametrize("sent", ["0999-12-31", "0001-01-01T00:00:00Z", "0500-06-15T12:00:00Z"])
def test_years_before_1000_are_refused_or_stored_in_fixed_width(sent: str) -> None:
    # Regression: strftime("%Y") does not zero-pad such years on glibc.
    try:
        stored = parse_occurred_at(sent)
    except ValueError:
        return
    assert OCCURRED_AT_PATTERN.match(stored), stored
    assert len(stored) == 20


@pytest.mark.parametrize(
    "sent",
    [
        "\u0662\u0660\u0662\u0665-\u0660\u0662-\u0662\u0664",
        "\uff12\uff10\uff12\uff15-02-24T10:00:00Z",
    ],
)
def test_non_ascii_digits_are_refused(sent: str) -> None:
    with pytest.raises(ValueError):
        parse_occurred_at(sent)


def test_fractions_are_kept_to_microseconds_only_when_allowed() -> None:
    moment = parse_instant("2025-02-24T10:00:00.1234567+01:00", allow_fraction=True)
    assert moment == datetime(2025, 2, 24, 9, 0, 0, 123456, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_instant("2025-02-24T10:00:00.1234567+01:00")


def test_parse_instant_returns_an_aware_utc_datetime() -> None:
    moment = parse_instant("2025-02-24T10:00:00+01:00")
    assert moment.utcoffset() == timedelta(0)
    assert moment == datetime(2025, 2, 24, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 2, 24, tzinfo=UTC), "2025-02-24T00:00:00.000000Z"),
        (datetime(2025, 2, 24, 10, 1, 2, 3, tzinfo=UTC), "2025-02-24T10:01:02.000003Z"),
        (
            datetime(2025, 2, 24, 1, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))),
            "2025-02-23T23:00:00.999999Z",
        ),
    ],
)
def test_recorded_at_is_utc_with_six_fraction_digits(moment: datetime, text: str) -> None:
    assert format_recorded_at(moment) == text
    assert len(text) == 27


# -- properties ----------------------------------------------------------------

_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# A day's margin at both ends keeps every offset inside the calendar once converted to UTC.
_aware = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30, 23, 59, 59), timezones=_offsets
).map(lambda moment: moment.replace(microsecond=0))


def rfc3339(moment: datetime, *, zulu: bool = False) -> str:
    """The RFC 3339 text of an aware datetime, written without strftime."""
    offset = moment.utcoffset()
    assert offset is not None
    local = moment.replace(tzinfo=None).isoformat(timespec="seconds")
    if zulu and offset == timedelta(0):
        return local + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{local}{sign}{hours:02d}:{minutes:02d}"


def utc_text(moment: datetime) -> str:
    offset = moment.utcoffset()
    assert offset is not None
    return (moment.replace(tzinfo=None) - offset).isoformat(timespec="seconds") + "Z"


@PROPERTY
@given(moment=_aware, zulu=st.booleans())
def test_any_rfc3339_time_is_stored_as_its_utc_form(moment: datetime, zulu: bool) -> None:
    stored = parse_occurred_at(rfc3339(moment, zulu=zulu))
    assert stored == utc_text(moment)
    assert OCCURRED_AT_PATTERN.match(stored)


@PROPERTY
@given(first=_aware, second=_aware)
def test_string_order_of_stored_times_is_time_order(first: datetime, second: datetime) -> None:
    a = parse_occurred_at(rfc3339(first))
    b = parse_occurred_at(rfc3339(second))
    assert (a < b) == (first < second)
    assert (a == b) == (first == second)


_utc_moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)
).map(lambda moment: moment.replace(tzinfo=UTC))


@PROPERTY
@given(moment=_utc_moments)
def test_recorded_at_is_always_27_characters(moment: datetime) -> None:
    text = format_recorded_at(moment)
    assert len(text) == 27
    assert RECORDED_AT_PATTERN.match(text)
    assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) == moment


@PROPERTY
@given(first=_utc_moments, second=_utc_moments)
def test_recorded_at_string_order_is_time_order(first: datetime, second: datetime) -> None:
    assert (format_recorded_at(first) < format_recorded_at(second)) == (first < second)


@PROPERTY
@given(moment=_utc_moments)
def test_occurred_at_formatting_drops_the_fraction(moment: datetime) -> None:
    text = format_occurred_at(moment)
    assert OCCURRED_AT_PATTERN.match(text)
    assert text == format_recorded_at(moment)[:19] + "Z"


def test_recorded_at_keeps_27_characters_before_year_1000() -> None:
    assert len(format_recorded_at(datetime(999, 12, 31, tzinfo=UTC))) == 27
