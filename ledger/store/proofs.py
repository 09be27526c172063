"""Reads of the verifiable log: roots, proofs and checkpoints of any size.

Each answer costs one query for the ledger row and one for the O(log n)
stored nodes it needs (planned by ``ledger.core.merkle``), whatever the size
of the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core import checkpoint as notes
from ledger.core.errors import InvalidParameter, NotFound
from ledger.core.hashing import GENESIS_PREV
from ledger.core.merkle import (
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    nodes_for_ranges,
    perfect_cover,
    root_from_nodes,
)
from ledger.store.recorder import Recorder
from ledger.store.tables import checkpoints, ledgers, records
from ledger.store.tree import load_nodes

__all__ = ["ConsistencyProof", "InclusionProof", "LogReader"]


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

    def _ledger(self, conn: Connection, ledger: str) -> tuple[int, int]:
        row = conn.execute(
            sa.select(ledgers.c.id, ledgers.c.head_seq).where(ledgers.c.name == ledger)
        ).first()
        if row is None:
            raise NotFound(f"no ledger named {ledger!r}")
        return row.id, row.head_seq

    @staticmethod
    def _check_size(name: str, size: int, head: int) -> None:
        if size > head:
            raise InvalidParameter(f"exceeds the ledger's size {head}", field=name)

    def inclusion(self, ledger: str, *, seq: int, tree_size: int | None) -> InclusionProof:
        with self.db.read() as conn:
            ledger_id, head = self._ledger(conn, ledger)
            size = head if tree_size is None else tree_size
            if seq > head:
                raise NotFound(f"ledger {ledger!r} has no record at seq {seq}")
            self._check_size("tree_size", size, head)
            if seq > size:
                raise InvalidParameter(f"record {seq} is not in a tree of size {size}", field="seq")
            ranges = inclusion_ranges(seq - 1, size)
            nodes = load_nodes(
                conn, ledger_id, [*nodes_for_ranges(ranges), *perfect_cover(0, size)]
            )
        return InclusionProof(
            seq=seq,
            tree_size=size,
            leaf_index=seq - 1,
            proof=inclusion_proof(seq - 1, size, nodes),
            root=root_from_nodes(size, nodes),
        )

    def consistency(self, ledger: str, *, size1: int, size2: int | None) -> ConsistencyProof:
        with self.db.read() as conn:
            ledger_id, head = self._ledger(conn, ledger)
            to = head if size2 is None else size2
            if size1 < 1:
                raise InvalidParameter(
                    "a consistency proof from tree size 0 is meaningless", field="from"
                )
            self._check_size("to", to, head)
            if size1 > to:
                raise InvalidParameter(f"must not exceed to ({to})", field="from")
            ranges = consistency_ranges(size1, to)
            nodes = load_nodes(
                conn,
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
        with self.db.read() as conn:
            ledger_id, head = self._ledger(conn, ledger)
            self._check_size("tree_size", size, head)
            return root_from_nodes(size, load_nodes(conn, ledger_id, perfect_cover(0, size)))

    def checkpoint(self, ledger: str, *, size: int | None = None) -> str:
        """The signed note of ``size`` (default: the latest), signed now if not stored."""
        with self.db.read() as conn:
            ledger_id, head = self._ledger(conn, ledger)
            if size is not None and size > head:
                raise NotFound(f"no checkpoint of size {size}: the ledger holds {head} records")
            wanted = head if size is None else size
            stored = conn.execute(
                sa.select(checkpoints.c.note).where(
                    checkpoints.c.ledger_id == ledger_id, checkpoints.c.tree_size == wanted
                )
            ).first()
            if stored is not None:
                return str(stored.note)
            root = root_from_nodes(wanted, load_nodes(conn, ledger_id, perfect_cover(0, wanted)))
            head_hash = GENESIS_PREV
            if wanted:
                head_hash = conn.execute(
                    sa.select(records.c.record_hash).where(
                        records.c.ledger_id == ledger_id, records.c.seq == wanted
                    )
                ).scalar_one()
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
