"""Positions: snapshot latency at 10^4 and 10^6 records, and the full rebuild
rate beside the PyPI ``eventsourcing`` library replaying 100,000 events.

Targets: snapshot p50 < 20 ms at 10^6 and within 3x of the 10^4 figure;
rebuild >= 100,000 records/s.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from typing import Any

from bench.harness import Figure, Report, console, fresh_runtime, wrk_latency
from ledger.core.records import EventDraft
from ledger.runtime import Runtime
from ledger.store.positions import rebuild
from tests.servers import ServerProcess

SIZES = (10_000, 1_000_000)
PARTIES = ["US", "UA", "EU", "RU", "UK"]
TOPICS = [
    "security-guarantees",
    "revenue-share",
    "resources-in-scope",
    "reconstruction-fund",
    "investment-link",
    "signing",
    "ports",
    "oil-and-gas",
    "rare-earths",
    "governance",
]
STANCES = ["support", "oppose", "demand", "offer", "conditional", "reject", "undecided"]
SNAPSHOTS = 300
START_DAY = 1_735_689_600  # 2025-01-01T00:00:00Z


def day_text(offset_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START_DAY + offset_seconds))


class NegotiationGenerator:
    """A long negotiation: mostly statements in rough time order, some told late,
    ~5% claims about another party, ~1% corrections and ~0.5% retractions."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seq = 0
        self.positions: list[int] = []
        self.retracted: set[int] = set()

    def batch(self, count: int, size: int) -> list[EventDraft]:
        drafts = []
        for _ in range(count):
            self.seq += 1
            drafts.append(self._one(size))
        return drafts

    def _one(self, size: int) -> EventDraft:
        rng = self.rng
        # Valid time advances with seq over ~one year; 10% are told late.
        when = int(self.seq / size * 365 * 86_400)
        if rng.random() < 0.1:
            when = max(0, when - rng.randint(0, 30 * 86_400))
        roll = rng.random()
        live = [s for s in self.positions[-200:] if s not in self.retracted]
        if roll < 0.01 and live:
            target = rng.choice(live)
            return self._draft(
                "record.corrected",
                when,
                data={
                    "target_seq": target,
                    "reason": "source re-checked",
                    "changes": {"source": {"name": "Reuters", "kind": "media"}},
                },
            )
        if roll < 0.015 and live:
            target = rng.choice(live)
            self.retracted.add(target)
            return self._draft(
                "record.retracted", when, data={"target_seq": target, "reason": "unconfirmed"}
            )
        party = rng.choice(PARTIES)
        data: dict[str, Any] = {"stance": rng.choice(STANCES), "summary": f"statement {self.seq}"}
        if rng.random() < 0.3:
            data["terms"] = {"share_percent": rng.randint(0, 100)}
        if rng.random() < 0.05:
            data["claimed_by"] = rng.choice([p for p in PARTIES if p != party])
        self.positions.append(self.seq)
        return self._draft(
            "position.stated",
            when,
            party=party,
            topic=rng.choice(TOPICS),
            data=data,
            source={"name": rng.choice(["CNN", "NYT", "Reuters", "AP"]), "kind": "media"},
        )

    @staticmethod
    def _draft(kind: str, when: int, *, data: dict[str, Any], **members: Any) -> EventDraft:
        return EventDraft.of(
            id=str(uuid.uuid4()), type=kind, occurred_at=day_text(when), data=data, **members
        )


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def fill_negotiation(runtime: Runtime, size: int) -> float:
    runtime.service.create_ledger("bench")
    generator = NegotiationGenerator(seed=size)
    start = time.perf_counter()
    with console.status(f"filling a {size:,}-record negotiation") as status:
        while generator.seq < size:
            drafts = generator.batch(min(1000, size - generator.seq), size)
            runtime.service.recorder.append("bench", drafts, actor="bench")
            if generator.seq % 50_000 == 0:
                status.update(f"filling: {generator.seq:,}/{size:,}")
    return size / (time.perf_counter() - start)


def eventsourcing_replay_rate(events: int = 100_000) -> float:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Talks(Aggregate):
        @event("Opened")
        def __init__(self, name: str) -> None:
            self.count = 0

        @event("PositionStated")
        def state(self, party: str, topic: str, stance: str, summary: str) -> None:
            self.count += 1

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": os.path.join(tmp, "es.db"),
        }
        writer: Any = Application(env=env)
        talks = Talks(name="bench")
        with console.status(f"eventsourcing: storing {events:,} events"):
            for n in range(events - 1):
                talks.state(party="US", topic="signing", stance="oppose", summary=f"s {n}")
                if n % 1000 == 999:
                    writer.save(talks)
            writer.save(talks)
        reader: Any = Application(env=env)
        start = time.perf_counter()
        replayed: Any = reader.repository.get(talks.id)
        elapsed = time.perf_counter() - start
        assert replayed.count == events - 1
    return events / elapsed


def run(report: Report, sizes: tuple[int, ...] = SIZES) -> None:
    console.rule("positions")
    rng = random.Random(6)
    baseline = eventsourcing_replay_rate()
    console.print(f"eventsourcing replay of 100,000 events: {baseline:,.0f} events/s")
    p50s: dict[int, float] = {}
    for size in sizes:
        with fresh_runtime() as runtime:
            rate = fill_negotiation(runtime, size)
            console.print(f"filled {size:,} records at {rate:,.0f} records/s")
            service = runtime.service
            head = service.get_ledger("bench").size
            samples = []
            for _ in range(SNAPSHOTS):
                as_of = None if rng.random() < 0.3 else day_text(rng.randint(0, 365 * 86_400))
                known_at = str(head if rng.random() < 0.5 else rng.randint(1, head))
                start = time.perf_counter()
                service.snapshot("bench", as_of=as_of, known_at=known_at)
                samples.append(time.perf_counter() - start)
            p50s[size] = statistics.median(samples) * 1000
            # The hard case for an index on valid time: known_at far behind the head.
            behind = []
            for _ in range(SNAPSHOTS // 3):
                start = time.perf_counter()
                service.snapshot("bench", as_of=None, known_at=str(rng.randint(1, head // 10)))
                behind.append(time.perf_counter() - start)
            server = ServerProcess(
                database_url=runtime.settings.resolved_database_url(),
                data_dir=runtime.settings.data_dir,
            )
            try:
                http = wrk_latency(f"{server.url}/v1/ledgers/bench/snapshot?as_of=2025-07-01")
                floor = wrk_latency(f"{server.url}/healthz")
            finally:
                server.stop()
            report.add(
                Figure(
                    "positions",
                    f"snapshot p50 in-process @{size:,}",
                    p50s[size],
                    "ms",
                    f"same @{sizes[0]:,}",
                    p50s[sizes[0]],
                    False,
                    "< 20 ms at 10^6; <= 3x @10^4",
                )
            )
            report.add(
                Figure(
                    "positions",
                    f"snapshot p99 in-process @{size:,}",
                    percentile(samples, 0.99) * 1000,
                    "ms",
                    "p50 of the same run",
                    p50s[size],
                    False,
                    "",
                )
            )
            report.add(
                Figure(
                    "positions",
                    f"snapshot p99, known_at <= head/10 @{size:,}",
                    percentile(behind, 0.99) * 1000,
                    "ms",
                    "random-query p50",
                    p50s[size],
                    False,
                    "",
                )
            )
            report.add(
                Figure(
                    "positions",
                    f"snapshot HTTP p50 @{size:,}",
                    http["p50"] * 1000,
                    "ms",
                    "GET /healthz p50",
                    floor["p50"] * 1000,
                    False,
                    "",
                )
            )
            if size == sizes[-1]:
                start = time.perf_counter()
                count = rebuild(runtime.database, "bench")
                rebuild_rate = count / (time.perf_counter() - start)
                report.add(
                    Figure(
                        "positions",
                        f"projection rebuild @{size:,}",
                        rebuild_rate,
                        "records/s",
                        "eventsourcing replay of 100,000",
                        baseline,
                        True,
                        ">= 100,000 records/s",
                    )
                )
