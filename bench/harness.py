"""Shared benchmark plumbing: fresh ledgers, timers, the results table, and
the one way a process's peak RSS is measured.

Cheap to import (no database stack at import time): measured child processes
import it to report their own peak RSS, and must not pay for what they do not use.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from ledger.core.records import EventDraft

if TYPE_CHECKING:
    from ledger.runtime import Runtime

RESULTS_DIR = Path(__file__).resolve().parent / "results"
console = Console()


@dataclass(frozen=True, slots=True)
class Figure:
    suite: str
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    # True when larger is better (rates); False for latencies and memory.
    higher_is_better: bool
    target: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        console.print(
            f"  {figure.name}: {figure.value:,.3f} {figure.unit} "
            f"(baseline {figure.baseline_name}: {figure.baseline:,.3f}; ratio {figure.ratio:.2f})"
        )

    def print_table(self) -> None:
        table = Table(title="Benchmark results (each figure beside its in-run baseline)")
        for column in ("suite", "figure", "value", "baseline", "baseline value", "ratio", "target"):
            table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
        for f in self.figures:
            table.add_row(
                f.suite,
                f.name,
                f"{f.value:,.3f} {f.unit}",
                f.baseline_name,
                f"{f.baseline:,.3f}",
                f"{f.ratio:.2f}",
                f.target,
            )
        console.print(table)

    def write_json(self, name: str) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{name}.json"
        payload = {
            "machine": machine(),
            "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures],
        }
        path.write_text(json.dumps(payload, indent=2))
        return path


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def peak_rss_mb(pid: int | None = None) -> float:
    """The peak RSS (MB) of one process: this one, or the live process ``pid``.

    It is the kernel's high-water mark of the process's own address space
    (``VmHWM``), so a measured child calls this just before it exits (or its
    parent does, for a live worker). ``ru_maxrss`` is not used: it is the
    maximum over every address space the process has had, and a child starts
    in its parent's (fork, vfork, posix_spawn) before it execs, so a child of
    a 2 GB benchmark process reads 2 GB whatever it does itself; and
    ``RUSAGE_CHILDREN`` is the largest over every child ever waited for.
    """
    with open(f"/proc/{pid or 'self'}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid or 'self'} (a zombie, or not Linux)")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def drafts(count: int, *, start: int = 0) -> list[EventDraft]:
    return [
        EventDraft.of(
            id=str(uuid.uuid4()),
            type="position.stated",
            occurred_at="2025-02-24T00:00:00Z",
            party="US" if n % 2 else "UA",
            topic="security-guarantees",
            data={"stance": "oppose", "summary": f"statement number {n}"},
            source={"name": "CNN", "kind": "media"},
        )
        for n in range(start, start + count)
    ]


@contextmanager
def fresh_runtime(database_url: str | None = None) -> Iterator[Runtime]:
    from ledger.config import Settings
    from ledger.runtime import Runtime

    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=database_url, origin="bench")
        runtime = Runtime.start(settings)
        try:
            yield runtime
        finally:
            runtime.close()


def fill(runtime: Runtime, ledger: str, size: int, *, batch: int = 1000) -> float:
    """Append ``size`` records in batches; returns records per second."""
    runtime.service.create_ledger(ledger)
    start = time.perf_counter()
    done = 0
    with console.status(f"filling {ledger} to {size:,} records") as status:
        while done < size:
            count = min(batch, size - done)
            runtime.service.recorder.append(ledger, drafts(count, start=done), actor="bench")
            done += count
            if done % 50_000 == 0:
                status.update(f"filling {ledger}: {done:,}/{size:,}")
    return size / (time.perf_counter() - start)


def _seconds(text: str) -> float:
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(f"unparsed wrk latency {text!r}")


def wrk_latency(
    url: str, *, lua: str | None = None, seconds: int = 5, connections: int = 1
) -> dict[str, float]:
    """p50/p99 latency (seconds) and requests/s from ``wrk --latency``.

    wrk is C: unlike a Python client it is not the bottleneck, so the figure
    is the server's.
    """
    import shutil
    import subprocess

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (scripts/bench.sh installs it)")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if lua:
            script.write(lua)
            script.flush()
            command[1:1] = ["-s", script.name]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            result[f"p{parts[0][:-1]}"] = _seconds(parts[1])
        if line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        if "Non-2xx" in line or "Socket errors" in line:
            raise RuntimeError(f"wrk saw failures: {line.strip()}")
    return result
