"""The browser's positions fold (ledger/web/static/positions.js) is the Python fold.

The page recomputes the grid with the JavaScript module; these tests run that
very file in node on hypothesis-generated ledgers and hold its result equal to
``ledger.core.positions.fold``, and its comparison able to name a difference.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.core.positions import fold
from tests.core.test_positions import STANCES, days, ledgers, sealed

MODULE = Path(__file__).resolve().parents[2] / "ledger" / "web" / "static" / "positions.js"
NODE = "/usr/bin/node"
# One node process answers every example: a line of JSON in, a line out.
DRIVER = """
const P = require(process.argv[1]);
const lines = require("readline").createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const c = JSON.parse(line);
  const made = P.fold(c.records, { asOf: c.as_of, knownAt: c.known_at });
  const diff = P.firstDifference(c.shown, made);
  process.stdout.write(JSON.stringify({ made, diff }) + "\\n");
});
"""


class NodeFold:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [NODE, "-e", DRIVER, str(MODULE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def __call__(
        self,
        records: list[dict[str, Any]],
        shown: dict[str, Any],
        as_of: str | None = None,
        known_at: int | None = None,
    ) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        case = {"records": records, "shown": shown, "as_of": as_of, "known_at": known_at}
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def node_fold() -> Iterator[NodeFold]:
    runner = NodeFold()
    yield runner
    runner.close()


@st.composite
def corrected_ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """``ledgers()``, plus corrections that replace a statement's data."""
    events = draw(ledgers())
    for _ in range(draw(st.integers(0, 3))):
        targets = [
            seq for seq, e in enumerate(events, start=1) if e["type"].startswith("position.")
        ]
        if not targets:
            break
        data: dict[str, Any] = {
            "stance": draw(st.sampled_from(STANCES)),
            "summary": draw(st.text(max_size=12)),
        }
        if draw(st.booleans()):
            data["claimed_by"] = draw(st.sampled_from(["US", "UA", "EU"]))
        if draw(st.booleans()):
            data["terms"] = {"share_percent": draw(st.integers(0, 100))}
        events.append(
            {
                "type": "record.corrected",
                "occurred_at": "2025-03-02",
                "data": {
                    "target_seq": draw(st.sampled_from(targets)),
                    "reason": "data",
                    "changes": {"data": data},
                },
            }
        )
    return events


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    events=corrected_ledgers(),
    as_of=st.none() | days.map(lambda d: f"{d}T12:00:00Z"),
    known_fraction=st.none() | st.floats(min_value=0, max_value=1),
)
def test_the_javascript_fold_equals_the_python_fold(
    node_fold: NodeFold,
    events: list[dict[str, Any]],
    as_of: str | None,
    known_fraction: float | None,
) -> None:
    records = sealed(events)
    known_at = None if known_fraction is None else int(known_fraction * len(records))
    expected = fold(records, as_of=as_of, known_at=known_at)
    shown = {"state": expected.state_dict(), "claims": expected.claims_dict()}
    answer = node_fold([r.to_dict() for r in records], shown, as_of, known_at)
    assert answer["made"] == shown
    assert answer["diff"] is None


def demo_shown() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from tests.core.test_positions import DEMO

    records = sealed([json.loads(line) for line in DEMO.read_text().splitlines()])
    positions = fold(records)
    return [r.to_dict() for r in records], {
        "state": positions.state_dict(),
        "claims": positions.claims_dict(),
    }


def test_a_forged_field_is_named_by_party_topic_and_field(node_fold: NodeFold) -> None:
    records, shown = demo_shown()
    shown["state"]["US"]["revenue-share"]["summary"] = "forged"
    diff = node_fold(records, shown)["diff"]
    assert diff.startswith('party US, topic revenue-share, summary: the grid shows "forged"')


def test_a_forged_or_hidden_cell_is_named(node_fold: NodeFold) -> None:
    records, shown = demo_shown()
    del shown["state"]["UA"]["signing"]
    assert node_fold(records, shown)["diff"].startswith(
        "party UA, topic signing: the grid shows no position"
    )
    records, shown = demo_shown()
    shown["claims"]["UA"]["revenue-share"]["US"]["stance"] = "reject"
    assert node_fold(records, shown)["diff"].startswith(
        'party UA, topic revenue-share, claim by US, stance: the grid shows "reject"'
    )
    records, shown = demo_shown()
    shown["claims"]["UA"]["revenue-share"]["EU"] = {"stance": "oppose", "since": "x", "seq": 3}
    assert node_fold(records, shown)["diff"].startswith(
        "party UA, topic revenue-share, claim by EU: the grid shows {"
    )
    assert node_fold(records, shown)["diff"].endswith("the records give no position")
