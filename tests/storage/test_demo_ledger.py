"""The bundled demo ledger as ``ledger demo`` loads it, on each backend."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.cli import DEMO_LEDGER, load_demo
from ledger.service import LedgerService


@pytest.fixture
def records(service: LedgerService) -> list[dict[str, Any]]:
    assert load_demo(service, quiet=True)
    lines, _ = service.read_page(DEMO_LEDGER, after_seq=0, limit=1000)
    return [json.loads(line) for line in lines]


def became_known(record: dict[str, Any]) -> str:
    """The day a record's content became public: when it was reported, and
    never before it happened."""
    occurred = str(record["occurred_at"])[:10]
    reported = str(record.get("source", {}).get("reported_at", ""))[:10]
    return max(occurred, reported)


def test_the_demo_is_recorded_in_the_order_its_reports_became_known(
    records: list[dict[str, Any]],
) -> None:
    days = [became_known(r) for r in records]
    assert days == sorted(days), list(zip([r["seq"] for r in records], days, strict=True))
    # So an early record number shows an early state of knowledge: at record 9
    # the ledger knew only Trump's claim about Kyiv, not Kyiv's refusal.
    ninth = records[8]
    assert ninth["data"].get("claimed_by") == "US" and ninth["party"] == "UA"
    assert [r["recorded_at"] for r in records] == sorted(r["recorded_at"] for r in records)


def test_each_report_is_its_own_append(service: LedgerService) -> None:
    """Records first known on different days never share a recorded_at."""
    assert load_demo(service, quiet=True)
    lines, _ = service.read_page(DEMO_LEDGER, after_seq=0, limit=1000)
    records = [json.loads(line) for line in lines]
    moments: dict[str, set[str]] = {}
    for record in records:
        moments.setdefault(record["recorded_at"], set()).add(became_known(record))
    assert all(len(days) == 1 for days in moments.values()), moments
    assert len(moments) == len({became_known(r) for r in records})


def test_the_correction_fixes_the_hardened_revenue_demand(records: list[dict[str, Any]]) -> None:
    (fix,) = [r for r in records if r["type"] == "record.corrected"]
    assert fix["seq"] == len(records)
    target = records[fix["data"]["target_seq"] - 1]
    assert target["party"] == "US" and target["topic"] == "revenue-share"
    assert target["data"]["terms"]["share_percent"] == 100
    assert target["source"]["name"] == "CNN"
    assert fix["data"]["changes"]["source"]["name"] == "The New York Times"


def test_the_demo_ledger_has_a_title_and_description(
    service: LedgerService, records: list[dict[str, Any]]
) -> None:
    info = service.get_ledger(DEMO_LEDGER)
    assert info.title and "minerals" in info.title.lower()
    assert info.description and len(info.description) > 80
