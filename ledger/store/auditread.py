"""Reads for the server-side audit (``ledger.audit``): everything stored, page by page.

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
from ledger.store.rawread import raw_read
from ledger.store.tree import load_nodes_with

__all__ = ["AuditReader", "StoredCheckpoint", "StoredLedger", "StoredRecord"]

_SELECT_LEDGER = "SELECT id, head_seq, head_hash FROM ledgers WHERE name = ?"
_SELECT_RECORDS = (
    "SELECT seq, canonical, record_hash FROM records "
    "WHERE ledger_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_SELECT_CHECKPOINTS = (
    "SELECT tree_size, root, head_hash, note FROM checkpoints "
    "WHERE ledger_id = ? AND tree_size > ? ORDER BY tree_size LIMIT ?"
)
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


class AuditReader:
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
