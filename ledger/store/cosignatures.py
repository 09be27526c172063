"""Witness cosignatures of stored checkpoints: what the collector writes and
what the witnessed-checkpoint reads, the export and the integrity check read.

A row is one configured witness's cosignature line on one stored checkpoint
(``checkpoint_cosignatures``, migration 0013). Rows are evidence: written
once, never changed (the table's guards refuse it), and a second writer of
the same row (two server processes collecting at once) is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from ledger.store.database import Database
from ledger.store.tables import checkpoint_cosignatures, checkpoints, ledgers

__all__ = [
    "CheckpointToWitness",
    "CosignatureRow",
    "CosignatureStore",
    "WitnessProgress",
    "WitnessedCheckpoint",
    "WitnessedReader",
]


@dataclass(frozen=True, slots=True)
class CheckpointToWitness:
    """A ledger's newest stored checkpoint: what its witnesses are asked to cosign."""

    ledger: str
    tree_size: int
    note: str


@dataclass(frozen=True, slots=True)
class CosignatureRow:
    tree_size: int
    witness: str
    signed_at: int
    line: str
    received_at: str


@dataclass(frozen=True, slots=True)
class WitnessProgress:
    """The largest tree size one witness cosigned for a ledger, and when it signed it."""

    witness: str
    tree_size: int
    signed_at: int


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    """A stored checkpoint with the cosignature lines of the witnesses asked for."""

    tree_size: int
    note: str
    lines: tuple[str, ...]
    head: int

    def text(self) -> str:
        """One signed note: the log's signature lines, then the cosignatures."""
        return self.note + "".join(
            line if line.endswith("\n") else line + "\n" for line in self.lines
        )


# Per ledger, one descent of the checkpoints' primary key: never a scan of them.
_others = checkpoints.alias("others")
_newest = (
    sa.select(sa.func.max(_others.c.tree_size))
    .where(_others.c.ledger_id == ledgers.c.id)
    .scalar_subquery()
)


class CosignatureStore:
    def __init__(self, *, database: Database) -> None:
        self.db = database

    def checkpoints_to_witness(self) -> list[CheckpointToWitness]:
        """Every ledger's newest stored checkpoint, in ledger name order."""
        query = (
            sa.select(ledgers.c.name, checkpoints.c.tree_size, checkpoints.c.note)
            .select_from(ledgers.join(checkpoints, checkpoints.c.ledger_id == ledgers.c.id))
            .where(checkpoints.c.tree_size == _newest)
            .order_by(ledgers.c.name)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [CheckpointToWitness(str(r.name), int(r.tree_size), str(r.note)) for r in rows]

    def progress(self, ledger: str, witnesses: Sequence[str]) -> dict[str, WitnessProgress]:
        """Per witness key of ``witnesses``, the largest size it cosigned for ``ledger``
        (absent: none). One descent of the primary key from the top per witness."""
        cosigned = checkpoint_cosignatures.c
        ledger_id = sa.select(ledgers.c.id).where(ledgers.c.name == ledger).scalar_subquery()
        found: dict[str, WitnessProgress] = {}
        with self.db.read() as conn:
            for witness in witnesses:
                row = conn.execute(
                    sa.select(cosigned.tree_size, cosigned.signed_at)
                    .where(cosigned.ledger_id == ledger_id, cosigned.witness == witness)
                    .order_by(cosigned.tree_size.desc())
                    .limit(1)
                ).first()
                if row is not None:
                    found[witness] = WitnessProgress(
                        witness, int(row.tree_size), int(row.signed_at)
                    )
        return found

    def add(self, ledger: str, row: CosignatureRow) -> bool:
        """Store one cosignature of ``ledger``'s checkpoint of ``row.tree_size``;
        False when that witness's cosignature of that size is already stored."""
        ledger_id = sa.select(ledgers.c.id).where(ledgers.c.name == ledger).scalar_subquery()
        insert = checkpoint_cosignatures.insert().values(
            ledger_id=ledger_id,
            tree_size=row.tree_size,
            witness=row.witness,
            signed_at=row.signed_at,
            line=row.line,
            received_at=row.received_at,
        )
        try:
            with self.db.write() as conn:
                conn.execute(insert)
        except sa.exc.IntegrityError:
            return False
        return True

    def witnessed(
        self, ledger: str, *, witnesses: Sequence[str], quorum: int, at_most: int | None = None
    ) -> WitnessedCheckpoint | None:
        """The newest checkpoint (at or below ``at_most``) that at least ``quorum``
        of ``witnesses`` cosigned, with their lines in ``witnesses`` order; None if none."""
        if not witnesses or quorum < 1:
            return None
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(ledgers.c.id, ledgers.c.head_seq).where(ledgers.c.name == ledger)
            ).first()
            if found is None:
                return None
            ledger_id, head = int(found.id), int(found.head_seq)
            cosigned = checkpoint_cosignatures.c
            size_query = (
                sa.select(cosigned.tree_size)
                .where(cosigned.ledger_id == ledger_id, cosigned.witness.in_(list(witnesses)))
                .group_by(cosigned.tree_size)
                .having(sa.func.count() >= quorum)
                .order_by(cosigned.tree_size.desc())
                .limit(1)
            )
            if at_most is not None:
                size_query = size_query.where(cosigned.tree_size <= at_most)
            size = conn.execute(size_query).scalar()
            if size is None:
                return None
            note = conn.execute(
                sa.select(checkpoints.c.note).where(
                    checkpoints.c.ledger_id == ledger_id, checkpoints.c.tree_size == size
                )
            ).scalar_one()
            lines = {
                str(r.witness): str(r.line)
                for r in conn.execute(
                    sa.select(cosigned.witness, cosigned.line).where(
                        cosigned.ledger_id == ledger_id,
                        cosigned.tree_size == size,
                        cosigned.witness.in_(list(witnesses)),
                    )
                )
            }
        return WitnessedCheckpoint(
            tree_size=int(size),
            note=str(note),
            lines=tuple(lines[w] for w in witnesses if w in lines),
            head=head,
        )

    def rows(self, ledger: str) -> list[tuple[CosignatureRow, str | None]]:
        """Every cosignature of a ledger, in (size, witness) order, each with the
        stored note of its checkpoint (None when no checkpoint of that size is stored)."""
        cosigned = checkpoint_cosignatures.c
        query = (
            sa.select(
                cosigned.tree_size,
                cosigned.witness,
                cosigned.signed_at,
                cosigned.line,
                cosigned.received_at,
                checkpoints.c.note,
            )
            .select_from(
                checkpoint_cosignatures.outerjoin(
                    checkpoints,
                    sa.and_(
                        checkpoints.c.ledger_id == cosigned.ledger_id,
                        checkpoints.c.tree_size == cosigned.tree_size,
                    ),
                )
            )
            .where(
                cosigned.ledger_id
                == sa.select(ledgers.c.id).where(ledgers.c.name == ledger).scalar_subquery()
            )
            .order_by(cosigned.tree_size, cosigned.witness)
        )
        with self.db.read() as conn:
            result = conn.execute(query).all()
        return [
            (
                CosignatureRow(
                    tree_size=int(r.tree_size),
                    witness=str(r.witness),
                    signed_at=int(r.signed_at),
                    line=str(r.line),
                    received_at=str(r.received_at),
                ),
                None if r.note is None else str(r.note),
            )
            for r in result
        ]


@dataclass(frozen=True, slots=True)
class WitnessedReader:
    """The witnessed checkpoints of the configured witnesses and quorum."""

    store: CosignatureStore
    witnesses: tuple[str, ...]
    quorum: int

    def newest(self, ledger: str, *, at_most: int | None = None) -> WitnessedCheckpoint | None:
        """The newest checkpoint (at or below ``at_most``) with the quorum; None if none."""
        return self.store.witnessed(
            ledger, witnesses=self.witnesses, quorum=self.quorum, at_most=at_most
        )
