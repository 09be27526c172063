"""The append benchmark's baselines do what the README says: the naive app
stores every posted event as a row, so its figure is a real insert, and the
no-op app stores nothing; and its servers run as ``ledger serve`` does when
started by default. (Functional only: benchmarks are never timed tests.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench.appends import AppProcess, position_event, start_ledger
from bench.compare import compare, markdown, to_json
from bench.naive_app import create_app, naive_events
from tests.servers import ChildServer

ROUTE = "/v1/ledgers/bench/events"


def test_naive_app_stores_each_event_as_a_row(database_url: str) -> None:
    with TestClient(create_app(database_url)) as client:
        one = client.post(ROUTE, json=position_event(0))
        batch = client.post(ROUTE, json=[position_event(n) for n in range(1, 4)])
    assert one.status_code == 201
    assert batch.status_code == 201
    assert [r["id"] for r in batch.json()] == [one.json()["id"] + n for n in range(1, 4)]
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        bodies = connection.execute(sa.select(naive_events.c.body)).scalars().all()
    engine.dispose()
    assert len(bodies) == 4
    assert "(statement 2)" in bodies[2]


def test_noop_app_answers_201_without_a_database() -> None:
    with TestClient(create_app(None)) as client:
        response = client.post(ROUTE, json=position_event(0))
    assert response.status_code == 201


STARTED_AT_INFO = "Application startup complete"


def served_log(server: ChildServer) -> list[str]:
    """What a server logged while it took an append and a health probe."""
    try:
        assert httpx.post(f"{server.url}{ROUTE}", json=position_event(0)).status_code == 201
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()
    return server.log_path.read_text().splitlines()


def access_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if '"GET /healthz HTTP/1.1" 200' in line]


@pytest.mark.slow
def test_the_ledger_is_benchmarked_as_ledger_serve_starts_by_default(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the caller's environment says, the benchmark's server runs at the defaults.
    monkeypatch.setenv("LEDGER_LOG_LEVEL", "warning")
    monkeypatch.setenv("LEDGER_ACCESS_LOG", "true")
    lines = served_log(start_ledger(database_url, tmp_path / "default", token=None))
    assert any(STARTED_AT_INFO in line for line in lines)  # the default level, info
    audit = [json.loads(line) for line in lines if line.startswith('{"time"')]
    assert [line["seq"] for line in audit if line["action"] == "append"] == [1]  # on stderr
    assert not access_lines(lines)


@pytest.mark.slow
def test_the_ledger_is_benchmarked_with_the_access_log_on_too(
    database_url: str, tmp_path: Path
) -> None:
    logged = start_ledger(database_url, tmp_path, token=None, access_log=True)
    assert access_lines(served_log(logged))


@pytest.mark.slow
def test_the_baseline_apps_run_under_ledger_serves_default_options(tmp_path: Path) -> None:
    lines = served_log(AppProcess(None, tmp_path))
    assert any(STARTED_AT_INFO in line for line in lines)
    assert not access_lines(lines)


# A child that touches ``argv[1]`` MB, then reports its peak as the suites' children do.
ALLOCATING_CHILD = """
import json, sys
from bench.harness import peak_rss_mb
held = bytearray(int(sys.argv[1]) << 20)
for page in range(0, len(held), 4096):
    held[page] = 1
print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
"""
# A parent that holds ``argv[1]`` MB while it runs a child touching ``argv[2]`` MB.
HOLDING_PARENT = """
import subprocess, sys
held = bytearray(int(sys.argv[1]) << 20)
for page in range(0, len(held), 4096):
    held[page] = 1
child = subprocess.run([sys.executable, "-c", sys.argv[3], sys.argv[2]],
                       capture_output=True, text=True, check=True)
print(child.stdout)
"""
REPO = Path(__file__).resolve().parent.parent


def child_peak_mb(*args: str) -> float:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    peak: float = json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    return peak


def test_a_childs_peak_rss_is_its_own_not_an_earlier_childs() -> None:
    big = child_peak_mb(ALLOCATING_CHILD, "300")
    small = child_peak_mb(ALLOCATING_CHILD, "20")
    assert big > 300
    assert small < big - 200


def test_a_childs_peak_rss_leaves_out_its_parents_memory() -> None:
    # A child starts in its parent's address space until it execs: a figure
    # that kept that (``ru_maxrss``) would read the benchmark process's size.
    small = child_peak_mb(HOLDING_PARENT, "300", "20", ALLOCATING_CHILD)
    assert small < 150


def figure(name: str, value: float, baseline: float, higher_is_better: bool) -> dict[str, object]:
    return {
        "suite": "verify",
        "name": name,
        "value": value,
        "unit": "records/s" if higher_is_better else "MB",
        "baseline_name": "baseline",
        "baseline": baseline,
        "higher_is_better": higher_is_better,
        "target": "",
        "ratio": value / baseline,
    }


def results_file(path: Path, *figures: dict[str, object]) -> list[dict[str, Any]]:
    """A ``latest.json`` as ``Report.write_json`` writes it, read back as compare reads it."""
    path.write_text(json.dumps({"machine": {}, "figures": list(figures)}))
    loaded: list[dict[str, Any]] = json.loads(path.read_text())["figures"]
    return loaded


def test_compare_keeps_each_figures_best_round_and_orients_the_change(tmp_path: Path) -> None:
    before = [
        results_file(
            tmp_path / "before-1.json",
            figure("rate", 100.0, 200.0, True),
            figure("memory", 50.0, 25.0, False),
            figure("latency", 10.0, 5.0, False),
            figure("gone", 1.0, 1.0, True),
            figure("peak RSS", 106.0, 99.0, False),
        ),
        results_file(tmp_path / "before-2.json", figure("rate", 80.0, 100.0, True)),
    ]
    after = [
        results_file(
            tmp_path / "after-1.json",
            figure("rate", 120.0, 200.0, True),  # 0.6 of the baseline, was 0.5: better
            figure("memory", 100.0, 25.0, False),  # twice the memory: worse
            figure("latency", 10.5, 5.0, False),  # 5% slower: within the noise allowed
            figure("new", 1.0, 1.0, True),
            # Its baseline (the revision's own floor) shrank more: memory compares values.
            figure("peak RSS", 46.5, 32.7, False),
        )
    ]
    rows = {row.name: row for row in compare(before, after)}

    assert list(rows) == ["rate", "memory", "latency", "gone", "peak RSS", "new"]
    rate = rows["rate"]
    # The best round is the best value in the figure's direction, with that round's baseline.
    assert rate.before is not None and (rate.before.value, rate.before.rounds) == (100.0, 2)
    assert rate.change == pytest.approx(1.2)
    assert rate.value_change == pytest.approx(1.2)
    assert not rate.worse
    assert rows["memory"].change == pytest.approx(0.5)
    assert rows["memory"].value_change == pytest.approx(2.0)
    assert rows["memory"].worse
    assert rows["latency"].change == pytest.approx(10 / 10.5)
    assert not rows["latency"].worse
    assert rows["peak RSS"].change == pytest.approx(106 / 46.5)
    assert not rows["peak RSS"].worse
    assert rows["gone"].after is None and not rows["gone"].worse
    assert rows["new"].before is None and not rows["new"].worse

    table = markdown(list(rows.values()), "HEAD~1", "HEAD").splitlines()
    assert table[2].startswith("| suite | figure | better | before | after |")
    memory = next(line for line in table if line.startswith("| verify | memory "))
    assert "| lower | 50.00 MB (x2.00) | 100 MB (x4.00) | 2.00 | 0.50 | **worse** |" in memory
    assert sum("**worse**" in line for line in table) == 1
    assert "(absent)" in next(line for line in table if "| new " in line)

    written = to_json(list(rows.values()), {"rounds": 2})
    assert [f["name"] for f in written["figures"] if f["worse"]] == ["memory"]
