"""Export bundles (format §4): rate and memory of ``write_bundle`` at 10^4 and
10^6 records, each beside a child process that only streams
``SELECT canonical`` (the floor any export pays) and one that only starts up.

Each measurement runs in a fresh child process, so its peak RSS is its own.
Two memory figures are reported: peak RSS (``harness.peak_rss_mb``) and peak
anonymous RSS (sampled ``RssAnon``). On SQLite the first includes the
database pages the engine memory-maps (``PRAGMA mmap_size``, 1 GiB, set for
proof reads): shared, clean page cache that any full read maps, so it is
compared with the plain read's. The second is what the export itself holds.

Targets: peak anonymous RSS well under 200 MB and flat from 10^4 to 10^6;
peak RSS no larger than a plain read's; the rate, with its two passes over
the records, at least a quarter of one plain read's.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import Figure, Report, console, fill, fresh_runtime, peak_rss_mb
from ledger.config import Settings
from ledger.core.bundle import MEMBERS, Manifest
from ledger.runtime import Runtime

SIZES = (10_000, 1_000_000)
LEDGER = "bench"
_ROOT = Path(__file__).resolve().parent.parent
_PAGE = 2000
_SAMPLE_SECONDS = 0.01


class AnonPeak:
    """Samples this process's anonymous RSS (Linux ``/proc``) in a thread."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def read_kib() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.read_kib())
            self._stop.wait(_SAMPLE_SECONDS)

    def __enter__(self) -> AnonPeak:
        self.peak_kib = self.read_kib()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, self.read_kib())


def _select_stream(runtime: Runtime) -> int:
    """The floor: one ordered pass over the stored bytes, fetched in pages."""
    from ledger.store.dbapi_reads import raw_read

    count = 0
    with raw_read(runtime.database) as reader:
        cursor = reader._cursor  # the bare DBAPI cursor: nothing but the read
        cursor.execute(
            "SELECT canonical FROM records WHERE ledger_id = "
            "(SELECT id FROM ledgers WHERE name = 'bench') ORDER BY seq"
        )
        while rows := cursor.fetchmany(_PAGE):
            count += len(rows)
    return count


def child(mode: str, database_url: str, data_dir: str, output: str) -> dict[str, Any]:
    """One measurement in this (fresh) process; returns what it saw."""
    from ledger.exporter import write_bundle

    settings = Settings(data_dir=Path(data_dir), database_url=database_url, origin="bench")
    # Migrating (a no-op when current) keeps a child working if the schema moved on.
    runtime = Runtime.start(settings)
    try:
        with AnonPeak() as anon:
            start = time.perf_counter()
            records = 0
            if mode == "export":
                with open(output, "wb") as out:
                    records = write_bundle(runtime.service, LEDGER, out).count
            elif mode == "select":
                records = _select_stream(runtime)
            elapsed = time.perf_counter() - start
    finally:
        runtime.close()
    return {
        "records": records,
        "seconds": elapsed,
        "peak_rss_mb": peak_rss_mb(),
        "peak_anon_mb": anon.peak_kib / 1024,
    }


def measure(mode: str, runtime: Runtime, output: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.export",
        mode,
        runtime.settings.resolved_database_url(),
        str(runtime.settings.data_dir),
        str(output),
    ]
    done = subprocess.run(command, cwd=_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {mode} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def check_bundle(path: Path, size: int) -> None:
    """One check that what was timed is a whole, self-consistent bundle."""
    with tarfile.open(path, mode="r:") as archive:
        assert archive.getnames() == list(MEMBERS)
        manifest_file = archive.extractfile("manifest.json")
        records_file = archive.extractfile("records.jsonl")
        assert manifest_file is not None and records_file is not None
        manifest = Manifest.from_bytes(manifest_file.read())
        digest = hashlib.sha256()
        while chunk := records_file.read(1 << 20):
            digest.update(chunk)
    assert manifest.count == size and manifest.records_sha256 == digest.hexdigest()


def run(report: Report, sizes: tuple[int, ...] = SIZES, database_url: str | None = None) -> None:
    console.rule("export")
    anon_by_size: dict[int, float] = {}
    for size in sizes:
        with fresh_runtime(database_url) as runtime:
            rate = fill(runtime, LEDGER, size)
            console.print(f"filled {size:,} records at {rate:,.0f} records/s")
            output = runtime.settings.data_dir / "bundle.tar"
            idle = measure("setup", runtime, output)
            select = measure("select", runtime, output)
            export = measure("export", runtime, output)
            assert select["records"] == export["records"] == size
            check_bundle(output, size)
            console.print(
                f"  bundle {output.stat().st_size / 2**20:,.0f} MiB in {export['seconds']:.2f} s; "
                f"children: setup {idle}, select {select}, export {export}"
            )
            output.unlink()
        anon_by_size[size] = export["peak_anon_mb"]
        report.add(
            Figure(
                "export",
                f"export rate @{size:,}",
                size / export["seconds"],
                "records/s",
                "SELECT canonical stream",
                size / select["seconds"],
                True,
                ">= 0.25x (two passes)",
            )
        )
        report.add(
            Figure(
                "export",
                f"export child peak RSS @{size:,}",
                export["peak_rss_mb"],
                "MB",
                "SELECT stream child",
                select["peak_rss_mb"],
                False,
                "<= 1.1x",
            )
        )
        report.add(
            Figure(
                "export",
                f"export child peak anonymous RSS @{size:,}",
                export["peak_anon_mb"],
                "MB",
                "child that only starts up",
                idle["peak_anon_mb"],
                False,
                "< 200 MB",
            )
        )
    if len(anon_by_size) > 1:
        first, last = sizes[0], sizes[-1]
        report.add(
            Figure(
                "export",
                f"peak anonymous RSS @{last:,} vs @{first:,}",
                anon_by_size[last],
                "MB",
                f"same @{first:,}",
                anon_by_size[first],
                False,
                "~1.0 (flat)",
            )
        )


if __name__ == "__main__":
    print(json.dumps(child(*sys.argv[1:5])))
