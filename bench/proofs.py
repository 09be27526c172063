"""Proof generation: in-process and over HTTP at 10^4, 10^5 and 10^6 records,
beside pymerkle's SQLite-backed proof generation at 10^5.

Targets: in-process rate >= pymerkle's; HTTP p50 < 2 ms at 10^6; the 10^6
in-process figure within 2x of the 10^4 one.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from bench.harness import Figure, Report, console, fill, fresh_runtime, wrk_latency
from ledger.core.hashing import leaf_hash
from ledger.core.merkle import verify_inclusion
from tests.servers import ServerProcess

SIZES = (10_000, 100_000, 1_000_000)
PROOFS = 2000
# A random record per request, proved in the full tree: no two requests alike.
PROOF_LUA = """
math.randomseed(6962)
request = function()
  local seq = math.random(1, SIZE)
  return wrk.format("GET", "/v1/ledgers/bench/proofs/inclusion?seq=" .. seq .. "&tree_size=SIZE")
end
"""


def pymerkle_rate(size: int, rng: random.Random) -> float:
    from pymerkle import SqliteTree

    with tempfile.TemporaryDirectory() as tmp:
        tree = SqliteTree(str(Path(tmp) / "merkle.db"))
        with console.status(f"pymerkle: appending {size:,} entries"):
            tree.append_entries([f"statement number {n}".encode() for n in range(size)])
        indexes = [rng.randint(1, size) for _ in range(PROOFS)]
        start = time.perf_counter()
        for index in indexes:
            tree.prove_inclusion(index, size)
        elapsed = time.perf_counter() - start
        tree.close()
    return PROOFS / elapsed


def run(report: Report, sizes: tuple[int, ...] = SIZES) -> None:
    rng = random.Random(6962)
    console.rule("proofs")
    baseline = pymerkle_rate(100_000, rng)
    console.print(f"pymerkle SqliteTree inclusion proofs at 10^5: {baseline:,.0f}/s")
    in_process: dict[int, float] = {}
    for size in sizes:
        with fresh_runtime() as runtime:
            rate = fill(runtime, "bench", size)
            console.print(f"filled {size:,} records at {rate:,.0f} records/s")
            service = runtime.service
            seqs = [rng.randint(1, size) for _ in range(PROOFS)]
            start = time.perf_counter()
            for seq in seqs:
                service.inclusion("bench", seq=seq, tree_size=size)
            in_process[size] = PROOFS / (time.perf_counter() - start)
            # One spot check that what we timed is a real, valid proof.
            proof = service.inclusion("bench", seq=seqs[0], tree_size=size)
            leaf = leaf_hash(service.get_record("bench", seqs[0]))
            verify_inclusion(seqs[0] - 1, size, leaf, proof.proof, proof.root)
            report.add(
                Figure(
                    "proofs",
                    f"inclusion proofs in-process @{size:,}",
                    in_process[size],
                    "proofs/s",
                    "pymerkle SqliteTree @100,000",
                    baseline,
                    True,
                    ">= 1.0x pymerkle",
                )
            )
            server = ServerProcess(
                database_url=runtime.settings.resolved_database_url(),
                data_dir=runtime.settings.data_dir,
            )
            try:
                lua = PROOF_LUA.replace("SIZE", str(size))
                proof_http = wrk_latency(f"{server.url}/", lua=lua)
                # The HTTP stack's own floor: the cheapest route we serve.
                floor = wrk_latency(f"{server.url}/healthz")
            finally:
                server.stop()
            report.add(
                Figure(
                    "proofs",
                    f"inclusion proof HTTP p50 @{size:,}",
                    proof_http["p50"] * 1000,
                    "ms",
                    "GET /healthz p50",
                    floor["p50"] * 1000,
                    False,
                    "< 2 ms at 10^6",
                )
            )
            console.print(
                f"  HTTP p99 @{size:,}: {proof_http['p99'] * 1000:.2f} ms, "
                f"{proof_http['rps']:,.0f} proofs/s on one connection"
            )
    if sizes[0] in in_process and sizes[-1] in in_process:
        report.add(
            Figure(
                "proofs",
                f"in-process rate @{sizes[-1]:,} vs @{sizes[0]:,}",
                in_process[sizes[-1]],
                "proofs/s",
                f"same @{sizes[0]:,}",
                in_process[sizes[0]],
                True,
                ">= 0.5 (within 2x)",
            )
        )
