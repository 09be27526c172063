"""Demo data: a ledger of the 2025 US-Ukraine minerals talks, one posted event per line (JSONL).

The lines are in the order their content became public (``became_known``), so
the ledger's own order, its transaction time, tells what was known when.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DESCRIPTION", "TITLE", "became_known"]

TITLE = "US–Ukraine minerals deal, February 2025"  # noqa: RUF001 (a typographic dash)
DESCRIPTION = (
    "Washington asked Kyiv for a share of Ukraine's mineral wealth in return for "
    "past military aid; Kyiv would sign only a deal with security guarantees. "
    "Each party's stance on each topic, as officials and the press reported it "
    "between 10 and 24 February 2025, with the source of every statement. "
    "Records are numbered in the order the reports became known, so the ledger "
    "can show what was believed before a later correction."
)


def became_known(event: dict[str, Any]) -> str:
    """The day an event's content became public: when its source reported it,
    and never before it happened."""
    occurred = str(event.get("occurred_at", ""))[:10]
    source = event.get("source")
    reported = str(source.get("reported_at", ""))[:10] if isinstance(source, dict) else ""
    return max(occurred, reported)
