"""Reads for the integrity check (``ledger.integrity``): everything stored, page by page.

Unlike the hot read paths these scan a whole ledger, so each page is its own
short read (as ``Recorder.iter_records``): an audit never pins a transaction
or the SQLite WAL open while it hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ledger.core.errors import NotFound
from ledger.core.merkle import NodeId
from ledger.store.database import Database
from ledger.store.dbapi_reads import raw_read
from ledger.store.tree import load_nodes_with

__all__ = [
    "IntegrityReader",
    "StoredCheckpoint",
    "StoredFix",
    "StoredLedger",
    "StoredRecord",
    "StoredVersion",
]

_SELECT_LEDGER = "SELECT id, head_seq, head_hash FROM ledgers WHERE name = ?"
_SELECT_RECORDS = (
    "SELECT seq, canonical, record_hash FROM records "
    "WHERE ledger_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_SELECT_CHECKPOINTS = (
    "SELECT tree_size, root, head_hash, note FROM checkpoints "
    "WHERE ledger_id = ? AND tree_size > ? ORDER BY tree_size LIMIT ?"
)
_SELECT_RECORD = "SELECT canonical FROM records WHERE ledger_id = ? AND seq = ?"
_SELECT_VERSIONS = (
    "SELECT target_seq, known_from, known_to, party, topic, claimant, occurred_at, cell"
    " FROM position_versions WHERE ledger_id = ? AND (target_seq > ? OR (target_seq = ?"
    " AND known_from > ?)) ORDER BY target_seq, known_from LIMIT ?"
)
_SELECT_CELLS = "SELECT party, topic, claimant FROM position_cells WHERE ledger_id = ?"
_SELECT_MARKS = "SELECT known_from, occurred_at FROM position_marks WHERE ledger_id = ?"
_SELECT_FIXES = "SELECT fix_seq, target_seq, kind FROM record_fixes WHERE ledger_id = ?"
_COUNT_NODES = "SELECT COUNT(*) FROM tree_nodes WHERE ledger_id = ?"
# Well below SQLite's bound-parameter limit.
_KEYS_PER_QUERY = 500


@dataclass(frozen=True, slots=True)
class StoredLedger:
    ledger_id: int
    head_seq: int
    head_hash: str


@dataclass(frozen=True, slots=True)
class StoredRecord:
    seq: int
    canonical: bytes
    record_hash: str


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tree_size: int
    root: bytes
    head_hash: str
    note: str


@dataclass(frozen=True, slots=True)
class StoredVersion:
    target_seq: int
    known_from: int
    known_to: int | None
    party: str
    topic: str
    claimant: str
    occurred_at: str
    cell: str | None


@dataclass(frozen=True, slots=True)
class StoredFix:
    fix_seq: int
    target_seq: int
    kind: str


class IntegrityReader:
    def __init__(self, database: Database, *, page: int = 2000) -> None:
        self.db = database
        self.page = page

    def ledger(self, name: str) -> StoredLedger:
        with raw_read(self.db) as reader:
            row = reader.one(_SELECT_LEDGER, [name])
        if row is None:
            raise NotFound(f"no ledger named {name!r}")
        return StoredLedger(int(row[0]), int(row[1]), str(row[2]))

    def records(self, ledger_id: int) -> Iterator[StoredRecord]:
        after = 0
        while True:
            with raw_read(self.db) as reader:
                rows = reader.all(_SELECT_RECORDS, [ledger_id, after, self.page])
            for seq, canonical, digest in rows:
                yield StoredRecord(int(seq), bytes(canonical), str(digest))
            if len(rows) < self.page:
                return
            after = int(rows[-1][0])

    def checkpoints(self, ledger_id: int) -> Iterator[StoredCheckpoint]:
        after = -1
        while True:
            with raw_read(self.db) as reader:
                rows = reader.all(_SELECT_CHECKPOINTS, [ledger_id, after, self.page])
            for size, root, head_hash, note in rows:
                yield StoredCheckpoint(int(size), bytes(root), str(head_hash), str(note))
            if len(rows) < self.page:
                return
            after = int(rows[-1][0])

    def nodes(self, ledger_id: int, wanted: Iterable[NodeId]) -> dict[NodeId, bytes]:
        nodes = sorted(set(wanted))
        found: dict[NodeId, bytes] = {}
        with raw_read(self.db) as reader:
            for start in range(0, len(nodes), _KEYS_PER_QUERY):
                found.update(
                    load_nodes_with(reader.all, ledger_id, nodes[start : start + _KEYS_PER_QUERY])
                )
        return found

    def node_count(self, ledger_id: int) -> int:
        with raw_read(self.db) as reader:
            row = reader.one(_COUNT_NODES, [ledger_id])
        return int(row[0]) if row else 0

    def record(self, ledger_id: int, seq: int) -> bytes | None:
        with raw_read(self.db) as reader:
            row = reader.one(_SELECT_RECORD, [ledger_id, seq])
        return None if row is None else bytes(row[0])

    def versions(self, ledger_id: int) -> Iterator[StoredVersion]:
        """Every ``position_versions`` row, in (target_seq, known_from) order."""
        after = (0, 0)
        while True:
            with raw_read(self.db) as reader:
                rows = reader.all(_SELECT_VERSIONS, [ledger_id, after[0], *after, self.page])
            for target, known_from, known_to, party, topic, claimant, occurred_at, cell in rows:
                yield StoredVersion(
                    int(target),
                    int(known_from),
                    None if known_to is None else int(known_to),
                    str(party),
                    str(topic),
                    str(claimant),
                    str(occurred_at),
                    None if cell is None else str(cell),
                )
            if len(rows) < self.page:
                return
            after = (int(rows[-1][0]), int(rows[-1][1]))

    def cells(self, ledger_id: int) -> set[tuple[str, str, str]]:
        with raw_read(self.db) as reader:
            rows = reader.all(_SELECT_CELLS, [ledger_id])
        return {(str(party), str(topic), str(claimant)) for party, topic, claimant in rows}

    def marks(self, ledger_id: int) -> dict[int, str]:
        with raw_read(self.db) as reader:
            rows = reader.all(_SELECT_MARKS, [ledger_id])
        return {int(block): str(occurred_at) for block, occurred_at in rows}

    def fixes(self, ledger_id: int) -> dict[int, StoredFix]:
        with raw_read(self.db) as reader:
            rows = reader.all(_SELECT_FIXES, [ledger_id])
        return {int(f): StoredFix(int(f), int(t), str(kind)) for f, t, kind in rows}
