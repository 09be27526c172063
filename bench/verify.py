"""Offline bundle verification (format §5) at 10^6 records, beside a bare hash chain.

The baseline is the least any chain verifier must do: one SHA-256 per line
over the same bytes, each chained to the previous digest. The verifier also
parses and re-encodes each line (canonical check), checks its members,
hashes it twice (record hash and Merkle leaf) and folds the tree.

Targets: rate >= 0.2x the baseline; peak RSS of the verifier < 200 MB (it
runs in a child process, so the figure is its own peak, ``harness.peak_rss_mb``,
plus each of its worker processes'). The verifier runs as a client would, with a pool of
``worker_count()`` processes checking blocks of lines, and again in one
process for comparison.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from bench.harness import Figure, Report, console
from ledger.core import checkpoint as notes
from ledger.core.bundle import MEMBERS, Manifest
from ledger.core.hashing import GENESIS_PREV, leaf_hash, record_hash
from ledger.core.records import EventDraft
from ledger.core.signing import Signer
from ledger.core.verification import MerkleAccumulator

SIZES = (1_000_000,)
LEDGER = "bench"
ORIGIN = f"bench.example/{LEDGER}"
RECORDED_AT = "2025-02-24T10:00:00.000000Z"
_ROOT = Path(__file__).resolve().parent.parent

# The child reports its own peak RSS and each worker's, so the parent's
# bundle building and baseline loop do not count against the verifier. It
# verifies as a client would: with a pool of ``worker_count()`` processes
# (none on one CPU), or with none when asked (argv[3] == "0"). The workers'
# peaks are read while they are still alive, before the pool shuts down.
CHILD = """
import json, multiprocessing, sys, time
from concurrent.futures import ProcessPoolExecutor
from bench.harness import peak_rss_mb
from ledger.core.signing import VerifierKey
from ledger.core.verification import verify_bundle, worker_count
key = VerifierKey.from_string(sys.argv[2])
workers = worker_count() if sys.argv[3] != "0" else 0
worker_peaks = []
start = time.perf_counter()
with open(sys.argv[1], "rb") as handle:
    if workers:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            report, _ = verify_bundle(handle, key, executor=pool)
            # The pool starts workers only once it is given blocks (not for small bundles).
            worker_peaks = [peak_rss_mb(p.pid) for p in multiprocessing.active_children()]
    else:
        report, _ = verify_bundle(handle, key)
seconds = time.perf_counter() - start
print(json.dumps({"valid": report.valid, "count": report.count, "seconds": seconds,
                  "reason": report.reason, "workers": len(worker_peaks),
                  "peak_rss_mb": peak_rss_mb(), "worker_peak_rss_mb": worker_peaks}))
"""
# The floor imports what the child does, harness included.
FLOOR = """
import json
import ledger.core.verification
from bench.harness import peak_rss_mb
print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
"""


def build_bundle(path: Path, size: int, signer: Signer) -> None:
    """A format §4 bundle of ``size`` records built with the core alone (no database)."""
    records_path = path.with_suffix(".jsonl")
    digest = hashlib.sha256()
    tree = MerkleAccumulator()
    prev = GENESIS_PREV
    with records_path.open("wb") as out, console.status(f"building a {size:,}-record bundle"):
        for n in range(size):
            record = EventDraft.of(
                id=str(uuid.UUID(int=n + 1, version=4)),
                type="position.stated",
                occurred_at="2025-02-24T00:00:00Z",
                party="US" if n % 2 else "UA",
                topic="security-guarantees",
                data={"stance": "oppose", "summary": f"statement number {n}"},
                source={"name": "CNN", "kind": "media"},
            ).seal(ledger=LEDGER, seq=n + 1, prev=prev, recorded_at=RECORDED_AT, actor="bench")
            line = record.canonical()
            out.write(line + b"\n")
            digest.update(line + b"\n")
            tree.add(leaf_hash(line))
            prev = record_hash(line)
    root = tree.root()
    manifest = Manifest(
        ledger=LEDGER,
        origin=ORIGIN,
        from_seq=1,
        to_seq=size,
        records_sha256=digest.hexdigest(),
        first_prev=GENESIS_PREV,
        head_hash=prev,
        merkle_root=root,
        key_id=signer.verifier.key_id_hex,
        key_name=signer.name,
        created_at=RECORDED_AT,
    )
    checkpoint = notes.sign(
        notes.Checkpoint(origin=ORIGIN, tree_size=size, root=root, head_hash=prev), [signer]
    )
    manifest_bytes = manifest.to_bytes()
    small = {
        "manifest.json": manifest_bytes,
        "manifest.sig": signer.sign(manifest_bytes),
        "checkpoint": checkpoint.to_text().encode(),
        "public_key.pem": signer.verifier.public_pem(),
    }
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in MEMBERS:
            if name == "records.jsonl":
                tar.add(records_path, arcname=name)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(small[name])
            with tempfile.SpooledTemporaryFile() as content:
                content.write(small[name])
                content.seek(0)
                tar.addfile(info, content)
    records_path.unlink()


def chained_sha256_rate(path: Path) -> tuple[float, int]:
    """Records/s of the bare chain over the bundle's own record bytes, read the same way."""
    with tarfile.open(path, "r|") as tar:
        for member in tar:
            if member.name != "records.jsonl":
                continue
            stream = tar.extractfile(member)
            assert stream is not None
            start = time.perf_counter()
            count, prev, pending = 0, b"", b""
            while chunk := stream.read(1 << 20):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    prev = hashlib.sha256(line + prev).digest()
                count += len(lines)
            return count / (time.perf_counter() - start), count
    raise RuntimeError("no records.jsonl in the bundle")


def _child(code: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=_ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(report: Report, sizes: tuple[int, ...] = SIZES) -> None:
    console.rule("verify")
    signer = Signer.generate(ORIGIN)
    floor = _child(FLOOR)
    floor_mb = float(str(floor["peak_rss_mb"]))
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-verify-") as tmp:
            path = Path(tmp) / "bundle.tar"
            build_bundle(path, size, signer)
            console.print(f"bundle of {size:,} records: {path.stat().st_size / 2**20:,.0f} MiB")
            single, single_baseline = _verify(path, size, signer, pool=False)
            result, baseline = _verify(path, size, signer, pool=True)
        workers = int(str(result["workers"]))
        worker_peaks = result["worker_peak_rss_mb"]
        assert isinstance(worker_peaks, list)
        # An upper bound: the parent at its peak plus every worker at its own.
        rss_mb = float(str(result["peak_rss_mb"])) + sum(float(mb) for mb in worker_peaks)
        report.add(
            Figure(
                "verify",
                f"bundle verification @{size:,} ({workers} worker processes)",
                size / float(str(result["seconds"])),
                "records/s",
                "chained SHA-256 loop, same bytes",
                baseline,
                True,
                ">= 0.2x baseline",
            )
        )
        report.add(
            Figure(
                "verify",
                f"bundle verification @{size:,}, one process",
                size / float(str(single["seconds"])),
                "records/s",
                "chained SHA-256 loop, same bytes",
                single_baseline,
                True,
            )
        )
        report.add(
            Figure(
                "verify",
                f"verifier peak RSS @{size:,}, workers included",
                rss_mb,
                "MB",
                "interpreter + verifier imported",
                floor_mb,
                False,
                "< 200 MB",
            )
        )


def _verify(
    path: Path, size: int, signer: Signer, *, pool: bool
) -> tuple[dict[str, object], float]:
    """The verifier's figures, and the baseline rate around them.

    The baseline runs just before and just after the verifier, and the mean
    is taken: on a machine shared with other work, one baseline taken minutes
    apart from the run it is compared with measures a different machine.
    """
    before, counted = chained_sha256_rate(path)
    assert counted == size
    how = "with worker processes" if pool else "in one process"
    with console.status(f"verifying {size:,} records {how}, in a child process"):
        result = _child(CHILD, str(path), signer.verifier.to_string(), "1" if pool else "0")
    if result["valid"] is not True or result["count"] != size:
        raise RuntimeError(f"the benchmark bundle did not verify: {result}")
    after, _ = chained_sha256_rate(path)
    return result, (before + after) / 2
