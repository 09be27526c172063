"""Fixed-width UTC timestamps (format §1).

``occurred_at`` is stored as ``YYYY-MM-DDTHH:MM:SSZ`` and ``recorded_at`` as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``: fixed widths make string order equal time
order, so the database and the fold can compare them as strings.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = [
    "OCCURRED_AT_PATTERN",
    "RECORDED_AT_PATTERN",
    "format_occurred_at",
    "format_recorded_at",
    "parse_instant",
    "parse_occurred_at",
]

# re.ASCII: RFC 3339 DIGIT is 0-9 only; plain \d would admit any Unicode digit.
OCCURRED_AT_PATTERN = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)
RECORDED_AT_PATTERN = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z", re.ASCII)

_DATE = re.compile(r"\A(\d{4})-(\d{2})-(\d{2})\Z", re.ASCII)
_RFC3339 = re.compile(
    r"\A(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))\Z",
    re.ASCII,
)


def _fixed(moment: datetime) -> str:
    # Not strftime: it does not zero-pad years below 1000 on every platform,
    # and a short year would break the fixed width string order relies on.
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )


def format_occurred_at(moment: datetime) -> str:
    return _fixed(moment) + "Z"


def format_recorded_at(moment: datetime) -> str:
    return f"{_fixed(moment)}.{moment.microsecond:06d}Z"


def parse_instant(text: str, *, allow_fraction: bool = False) -> datetime:
    """Parse a bare date (midnight UTC) or RFC 3339 with an explicit offset.

    Raises ``ValueError`` with a sentence a user can act on.
    """
    if not isinstance(text, str):
        raise ValueError("must be a string")
    if m := _DATE.match(text):
        try:
            day = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError as e:
            raise ValueError(f"{text!r} is not a real date ({e})") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(
            f"{text!r} is neither a date (YYYY-MM-DD) nor an RFC 3339 time "
            "with an explicit offset (YYYY-MM-DDTHH:MM:SSZ or ...+HH:MM)"
        )
    if m[7] and not allow_fraction:
        raise ValueError(f"{text!r} has fractional seconds, which are not allowed")
    if m["z"]:
        offset = timedelta(0)
    else:
        hours, minutes = int(m["oh"]), int(m["om"])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r} has an impossible UTC offset")
        offset = timedelta(hours=hours, minutes=minutes)
        if m["sign"] == "-":
            offset = -offset
    micro = int((m[7] or ".0")[1:7].ljust(6, "0"))
    try:
        local = datetime(
            int(m[1]),
            int(m[2]),
            int(m[3]),
            int(m[4]),
            int(m[5]),
            int(m[6]),
            micro,
            tzinfo=timezone(offset),
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{text!r} is not a real time ({e})") from None


def parse_occurred_at(text: str) -> str:
    """Client form -> stored fixed UTC form, or ``ValueError``."""
    return format_occurred_at(parse_instant(text))
