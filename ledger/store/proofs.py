"""Reads of the verifiable log: roots, proofs and checkpoints of any size.

Each answer costs one query for the ledger row, one for the O(log n) stored
nodes it needs (planned by ``ledger.core.merkle``) and one range read of at
most 16 records per block of 16 leaves whose lower nodes it needs
(``ledger.store.tree``), whatever the size of the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.core import checkpoint as notes
from ledger.core.errors import InvalidParameter, NotFound
from ledger.core.hashing import GENESIS_PREV
from ledger.core.merkle import (
    NodeId,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    nodes_for_ranges,
    perfect_cover,
    root_from_nodes,
)
from ledger.store.dbapi_reads import RawReader, raw_read
from ledger.store.recorder import Recorder
from ledger.store.tree import load_nodes_with

__all__ = ["ConsistencyProof", "InclusionProof", "LogReader"]

_SELECT_HEAD = "SELECT id, head_seq FROM ledgers WHERE name = ?"
_SELECT_CHECKPOINT = "SELECT note FROM checkpoints WHERE ledger_id = ? AND tree_size = ?"
_SELECT_RECORD_HASH = "SELECT record_hash FROM records WHERE ledger_id = ? AND seq = ?"


def _load_nodes(reader: RawReader, ledger_id: int, nodes: Iterable[NodeId]) -> dict[NodeId, bytes]:
    return load_nodes_with(reader.all, ledger_id, nodes)


@dataclass(frozen=True, slots=True, kw_only=True)
class InclusionProof:
    seq: int
    tree_size: int
    leaf_index: int
    proof: list[bytes]
    root: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsistencyProof:
    size1: int
    size2: int
    proof: list[bytes]
    root1: bytes
    root2: bytes


class LogReader:
    def __init__(self, *, recorder: Recorder) -> None:
        self.recorder = recorder
        self.db = recorder.db

    def _ledger(self, reader: RawReader, ledger: str) -> tuple[int, int]:
        row = reader.one(_SELECT_HEAD, [ledger])
        if row is None:
            raise NotFound(f"no ledger named {ledger!r}")
        return int(row[0]), int(row[1])

    @staticmethod
    def _check_size(name: str, size: int, head: int) -> None:
        if size > head:
            raise InvalidParameter(f"exceeds the ledger's size {head}", field=name)

    def inclusion(self, ledger: str, *, seq: int, tree_size: int | None) -> InclusionProof:
        with raw_read(self.db) as reader:
            ledger_id, head = self._ledger(reader, ledger)
            size = head if tree_size is None else tree_size
            if seq > head:
                raise NotFound(f"ledger {ledger!r} has no record at seq {seq}")
            self._check_size("tree_size", size, head)
            if seq > size:
                raise InvalidParameter(f"record {seq} is not in a tree of size {size}", field="seq")
            ranges = inclusion_ranges(seq - 1, size)
            nodes = _load_nodes(
                reader, ledger_id, [*nodes_for_ranges(ranges), *perfect_cover(0, size)]
            )
        return InclusionProof(
            seq=seq,
            tree_size=size,
            leaf_index=seq - 1,
            proof=inclusion_proof(seq - 1, size, nodes),
            root=root_from_nodes(size, nodes),
        )

    def consistency(self, ledger: str, *, size1: int, size2: int | None) -> ConsistencyProof:
        with raw_read(self.db) as reader:
            ledger_id, head = self._ledger(reader, ledger)
            to = head if size2 is None else size2
            if size1 < 1:
                raise InvalidParameter(
                    "a consistency proof from tree size 0 is meaningless", field="from"
                )
            self._check_size("to", to, head)
            if size1 > to:
                raise InvalidParameter(f"must not exceed to ({to})", field="from")
            ranges = consistency_ranges(size1, to)
            nodes = _load_nodes(
                reader,
                ledger_id,
                [*nodes_for_ranges(ranges), *perfect_cover(0, size1), *perfect_cover(0, to)],
            )
        return ConsistencyProof(
            size1=size1,
            size2=to,
            proof=consistency_proof(size1, to, nodes),
            root1=root_from_nodes(size1, nodes),
            root2=root_from_nodes(to, nodes),
        )

    def root_at(self, ledger: str, size: int) -> bytes:
        with raw_read(self.db) as reader:
            ledger_id, head = self._ledger(reader, ledger)
            self._check_size("tree_size", size, head)
            return root_from_nodes(size, _load_nodes(reader, ledger_id, perfect_cover(0, size)))

    def checkpoint(self, ledger: str, *, size: int | None = None, fresh: bool = False) -> str:
        """The signed note of ``size`` (default: the latest), signed now if not stored.

        ``fresh``: signed now by the keys active now, even if a note is stored
        (an export must be checkable with the newest key alone; the tree is
        the same, so the two notes never disagree).
        """
        with raw_read(self.db) as reader:
            ledger_id, head = self._ledger(reader, ledger)
            if size is not None and size > head:
                raise NotFound(f"no checkpoint of size {size}: the ledger holds {head} records")
            wanted = head if size is None else size
            stored = None if fresh else reader.one(_SELECT_CHECKPOINT, [ledger_id, wanted])
            if stored is not None:
                return str(stored[0])
            root = root_from_nodes(wanted, _load_nodes(reader, ledger_id, perfect_cover(0, wanted)))
            head_hash = GENESIS_PREV
            if wanted:
                row = reader.one(_SELECT_RECORD_HASH, [ledger_id, wanted])
                assert row is not None, "a seq at or below the head has a record"
                head_hash = str(row[0])
        with self.db.read() as conn:
            signers = self.recorder.signers(conn)
        # Ed25519 is deterministic: signing the same size again yields the same note.
        note = notes.sign(
            notes.Checkpoint(
                origin=self.recorder.checkpoint_origin(ledger),
                tree_size=wanted,
                root=root,
                head_hash=head_hash,
            ),
            signers,
        )
        return note.to_text()
