"""``python -m bench compare BEFORE AFTER [SUITE ...] [--rounds N] [--quick]``:
one revision's figures beside another's, measured in interleaved runs.

Each revision is checked out into a temporary git worktree with its own
``.venv``; the suites run as that revision's own ``python -m bench SUITE``,
before and after in turn for every round, so a slow spell of a shared machine
falls on both. Each figure keeps its best round (its least disturbed, as the
suites' own rounds do); the change is oriented so that below 1 is worse
whichever way the figure points (see ``Row.change``).

A suite measures its own code against baselines it also carries (a naive app,
a no-op app, eventsourcing), so two revisions' harnesses may differ in more
than the ledger: their requests or their baselines. With ``--same-harness``,
the suites that drive the ledger only as a server process (``appends``) run
from this checkout's harness for both revisions, each serving its own ledger
(``LEDGER_BENCH_SERVER_ROOT``), so the requests and the baselines are the
same; the in-process suites still run each revision's own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.harness import RESULTS_DIR, console, machine

ROOT = Path(__file__).resolve().parent.parent
# Suites that start the ledger as a process, so one harness can measure any revision's.
SERVER_SUITES = ("appends",)
# A figure whose oriented change is below this is flagged as a regression.
WORSE_BELOW = 0.9


@dataclass(frozen=True, slots=True)
class Measured:
    """One figure of one revision: its best round."""

    value: float
    baseline: float
    ratio: float
    rounds: int


@dataclass(frozen=True, slots=True)
class Row:
    suite: str
    name: str
    unit: str
    higher_is_better: bool
    baseline_name: str
    before: Measured | None
    after: Measured | None

    @property
    def value_change(self) -> float:
        """after / before of the figure's own value."""
        if self.before is None or self.after is None or not self.before.value:
            return math.nan
        return self.after.value / self.before.value

    @property
    def memory(self) -> bool:
        return self.unit == "MB"

    @property
    def change(self) -> float:
        """How many times better ``after`` is (< 1: worse).

        A rate or a latency is compared through its ratio to its in-run
        baseline, which cancels the machine's speed at the time of each run. A
        memory figure does not vary with the machine's speed, and its baseline
        may be the revision's own (an interpreter with the verifier imported),
        so it is compared through its value. Lower-is-better figures (latency,
        memory) are inverted, so a rise reads below 1.
        """
        if self.before is None or self.after is None:
            return math.nan
        before, after = self.before.ratio, self.after.ratio
        usable = math.isfinite(before) and math.isfinite(after) and before and after
        if self.memory or not usable:
            before, after = self.before.value, self.after.value
        if not before or not after:
            return math.nan
        return after / before if self.higher_is_better else before / after

    @property
    def worse(self) -> bool:
        return self.change < WORSE_BELOW  # False for NaN


def best_rounds(rounds: Iterable[Sequence[dict[str, Any]]]) -> dict[tuple[str, str], Measured]:
    """Each figure's best round (by its value, in its direction), from ``latest.json`` figures."""
    seen: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for figures in rounds:
        for figure in figures:
            seen.setdefault((figure["suite"], figure["name"]), []).append(figure)
    best: dict[tuple[str, str], Measured] = {}
    for key, runs in seen.items():
        pick = max if runs[0]["higher_is_better"] else min
        top = pick(runs, key=lambda f: float(f["value"]))
        best[key] = Measured(
            float(top["value"]), float(top["baseline"]), float(top["ratio"]), len(runs)
        )
    return best


def compare(
    before: Sequence[Sequence[dict[str, Any]]], after: Sequence[Sequence[dict[str, Any]]]
) -> list[Row]:
    """One row per figure of either revision, in the order the suites report them."""
    described: dict[tuple[str, str], dict[str, Any]] = {}
    for figures in [*before, *after]:
        for figure in figures:
            described.setdefault((figure["suite"], figure["name"]), figure)
    best_before, best_after = best_rounds(before), best_rounds(after)
    return [
        Row(
            suite=key[0],
            name=key[1],
            unit=figure["unit"],
            higher_is_better=bool(figure["higher_is_better"]),
            baseline_name=figure["baseline_name"],
            before=best_before.get(key),
            after=best_after.get(key),
        )
        for key, figure in described.items()
    ]


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.3g}"


def _side(measured: Measured | None, unit: str) -> str:
    if measured is None:
        return "(absent)"
    return f"{_number(measured.value)} {unit} (x{_number(measured.ratio)})"


def markdown(rows: Sequence[Row], before_label: str, after_label: str) -> str:
    """The comparison as a markdown table; regressions marked **worse**."""
    lines = [
        f"before: {before_label}; after: {after_label}. Each figure: its best round, "
        "with its ratio to its in-run baseline in brackets. *change*: how many times "
        "better after is (below 1 is worse, whichever way the figure points; below "
        f"{WORSE_BELOW} is flagged): for rates and latencies, through the ratios to the "
        "baselines; for memory (MB), through the values.",
        "",
        "| suite | figure | better | before | after | value after/before | change | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.suite} | {row.name} (baseline: {row.baseline_name}) "
            f"| {'higher' if row.higher_is_better else 'lower'} "
            f"| {_side(row.before, row.unit)} | {_side(row.after, row.unit)} "
            f"| {_number(row.value_change)} | {_number(row.change)} "
            f"| {'**worse**' if row.worse else ''} |"
        )
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[Row], header: dict[str, Any]) -> dict[str, Any]:
    return {
        **header,
        "worse_below": WORSE_BELOW,
        "figures": [
            {
                **asdict(row),
                "value_change": row.value_change,
                "change": row.change,
                "worse": row.worse,
            }
            for row in rows
        ],
    }


# --- running two revisions --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkout:
    label: str  # "before" or "after"
    rev: str  # as given
    commit: str
    path: Path


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _run_logged(command: list[str], cwd: Path, log: Path, env: dict[str, str]) -> None:
    with log.open("w") as out:
        done = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command)} failed in {cwd} (log: {log}):\n{tail}")


def _environment() -> dict[str, str]:
    # The revision's own interpreter and sources, not this one's.
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _suite_command(
    checkout: Checkout, suite: str, *, quick: bool, same_harness: bool, env: dict[str, str]
) -> tuple[list[str], Path, dict[str, str]]:
    """The command measuring ``checkout`` on ``suite``: its directory and environment."""
    if same_harness and suite in SERVER_SUITES:
        python, cwd = sys.executable, ROOT
        env = {**env, "LEDGER_BENCH_SERVER_ROOT": str(checkout.path)}
    else:
        python, cwd = str(checkout.path / ".venv/bin/python"), checkout.path
    command = [python, "-m", "bench", suite, *(["--quick"] if quick else [])]
    return command, cwd, env


def run(
    rev_before: str,
    rev_after: str,
    suites: Sequence[str],
    *,
    rounds: int,
    quick: bool,
    same_harness: bool = False,
) -> list[Row]:
    logs = RESULTS_DIR / "compare-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    env = _environment()
    scratch = Path(tempfile.mkdtemp(prefix="ledger-bench-compare-"))
    checkouts: list[Checkout] = []
    results: dict[str, list[list[dict[str, Any]]]] = {"before": [], "after": []}
    try:
        for label, rev in (("before", rev_before), ("after", rev_after)):
            commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
            path = scratch / label
            _git("worktree", "add", "--detach", str(path), commit)
            checkouts.append(Checkout(label, rev, commit, path))
            with console.status(f"{label} ({rev}, {commit[:12]}): scripts/bootstrap.sh dev"):
                _run_logged(
                    ["scripts/bootstrap.sh", "dev"], path, logs / f"{label}-bootstrap.log", env
                )
        for n in range(1, rounds + 1):
            for suite in suites:
                for checkout in checkouts:
                    command, cwd, suite_env = _suite_command(
                        checkout, suite, quick=quick, same_harness=same_harness, env=env
                    )
                    latest = cwd / "bench" / "results" / "latest.json"
                    latest.unlink(missing_ok=True)
                    start = time.perf_counter()
                    with console.status(f"round {n}/{rounds}: {suite}, {checkout.label}"):
                        _run_logged(
                            command, cwd, logs / f"{checkout.label}-{suite}-{n}.log", suite_env
                        )
                    console.print(
                        f"round {n}/{rounds}: {suite}, {checkout.label} "
                        f"({time.perf_counter() - start:,.0f} s)"
                    )
                    results[checkout.label].append(json.loads(latest.read_text())["figures"])
    finally:
        removed = [
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(checkout.path)],
                cwd=ROOT,
                capture_output=True,
                check=False,
            ).returncode
            == 0
            for checkout in checkouts
        ]
        shutil.rmtree(scratch, ignore_errors=True)
        if not all(removed):  # git still lists what was deleted under it
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True, check=False)
    rows = compare(results["before"], results["after"])
    before, after = checkouts
    labels = (f"{rev_before} ({before.commit[:12]})", f"{rev_after} ({after.commit[:12]})")
    table = markdown(rows, *labels)
    header = {
        "machine": machine(),
        "before": {"rev": rev_before, "commit": before.commit},
        "after": {"rev": rev_after, "commit": after.commit},
        "suites": list(suites),
        "rounds": rounds,
        "quick": quick,
        "same_harness": sorted(set(suites) & set(SERVER_SUITES)) if same_harness else [],
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "compare.json").write_text(json.dumps(to_json(rows, header), indent=2))
    (RESULTS_DIR / "compare.md").write_text(table)
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    console.print(f"written to {RESULTS_DIR / 'compare.json'} and {RESULTS_DIR / 'compare.md'}")
    return rows


def main(argv: Sequence[str], suites: Sequence[str]) -> None:
    """The command line; ``suites`` are the suite names ``python -m bench`` knows."""
    parser = argparse.ArgumentParser(
        prog="bench compare",
        description="Run suites of two revisions interleaved and compare their figures.",
    )
    parser.add_argument("before", help="the revision before (any git revision)")
    parser.add_argument("after", help="the revision after")
    parser.add_argument(
        "suites",
        nargs="*",
        choices=[*suites, []],
        help="default: all, as python -m bench",
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--quick", action="store_true", help="each suite's --quick sizes")
    parser.add_argument(
        "--same-harness",
        action="store_true",
        help=f"run {', '.join(SERVER_SUITES)} from this checkout's harness for both revisions",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    rows = run(
        args.before,
        args.after,
        args.suites or list(suites),
        rounds=args.rounds,
        quick=args.quick,
        same_harness=args.same_harness,
    )
    if worse := sum(row.worse for row in rows):
        console.print(f"[bold red]{worse} figure(s) worse by more than {1 - WORSE_BELOW:.0%}[/]")
