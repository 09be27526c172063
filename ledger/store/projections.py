"""Projections as plug-ins of the append: the protocol a read model kept
inside each append transaction implements, the rows it plans for a group,
and the rebuild of all of them from the records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.errors import NotFound
from ledger.core.records import SealedDraft
from ledger.store.database import Database
from ledger.store.tables import ledgers, projection_rebuilds

__all__ = ["PlannedRows", "Projection", "RowsInto", "rebuild_projections"]


@dataclass(frozen=True, slots=True)
class RowsInto:
    """Where one kind of a projection's planned rows goes: ``table``'s
    ``columns`` (after ``ledger_id``, which the store fills in).

    A planned row holds ``fields`` (by default the columns themselves), each
    typed as ``table``'s column of that name. ``values``, when given, is per
    column the SQL that computes it from the row's fields (``u.<field>``) and
    ``joins`` (extra ``FROM`` items; ``%(ledger_id)s`` is the ledger's id);
    ``conflict`` an ``ON CONFLICT`` clause.
    """

    table: sa.Table
    columns: tuple[str, ...]
    fields: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    joins: str = ""
    conflict: str = ""

    def __post_init__(self) -> None:
        if not self.fields:
            object.__setattr__(self, "fields", self.columns)
        if self.values and len(self.values) != len(self.columns):
            raise ValueError("one value for each column")


@dataclass(frozen=True, slots=True)
class PlannedRows:
    """Rows a projection plans for a group, and where they go."""

    into: RowsInto
    rows: Sequence[tuple[Any, ...]]


class Projection(Protocol):
    """A read model kept inside the append transaction, and rebuilt from the records.

    The store knows a projection only by this protocol (``Recorder(projections=...)``):

    * ``tables``: the tables it keeps, all keyed by ``ledger_id``. The store
      never writes them itself; migration 0010's guards refuse UPDATE and
      DELETE on them except inside ``rebuild_projections``.
    * ``writes``: where the rows of ``planned`` go; fixed for the
      projection's life (a write that composes every projection's rows into
      one statement is made once from them).
    * ``validates(batch)``: whether ``apply`` must read the database for
      ``batch`` or may refuse it (a correction whose target it checks).
      Such a batch is written at once, inside a savepoint, and sealing
      ahead stops at it.
    * ``planned(batch)``: pure; the rows ``apply`` would write for ``batch``
      when they can be computed without the database, else None (then the
      group goes the usual way, through ``apply``). ``batch`` is the whole
      group's records, in seq order.
    * ``apply(conn, ledger_id, batch)``: inside the append transaction,
      after ``batch``'s records were inserted: write (and check) what they
      project to. Raising a ``LedgerError`` refuses the request (its
      savepoint rolls back); anything else fails the group.
    * ``rebuild(conn, ledger_id, head, progress)``: recompute every row of
      ``tables`` for the ledger from its records alone (the tables are
      already emptied); ``progress`` takes records done as they are.

    A projection whose rows always need the database (a validating one) has
    ``writes = ()`` and ``planned`` returning None for batches it projects.

    Writing one: its module declares its tables (``ledger.store.tables``,
    with a migration adding them to the 0010 guards) and one ``RowsInto``
    per table its appends insert into; ``planned`` builds those rows from
    the sealed drafts alone, as ``PlannedRows(into, rows)``; ``apply``
    writes the same rows with ``raw_execute_many`` (and checks what needs
    the database); ``rebuild`` derives them again from ``records``. It is
    then registered with the others in ``ledger.runtime``.
    """

    tables: tuple[sa.Table, ...]
    writes: tuple[RowsInto, ...]

    def validates(self, batch: Sequence[SealedDraft]) -> bool: ...

    def planned(self, batch: Sequence[SealedDraft]) -> Sequence[PlannedRows] | None: ...

    def apply(self, conn: Connection, ledger_id: int, batch: Sequence[SealedDraft]) -> None: ...

    def rebuild(
        self, conn: Connection, ledger_id: int, head: int, progress: Callable[[int], None]
    ) -> None: ...


def rebuild_projections(
    database: Database,
    ledger: str,
    projections: Sequence[Projection],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute every row ``projections`` keep for ``ledger`` from its records alone.

    Runs in one write transaction: appends wait, readers see the old rows
    until it commits. The tables refuse UPDATE and DELETE (migration 0010)
    unless the ledger's id is in ``projection_rebuilds``, which only this
    transaction ever sees. Returns the number of records the ledger holds.
    """
    with database.write() as conn:
        row = conn.execute(
            sa.select(ledgers.c.id, ledgers.c.head_seq)
            .where(ledgers.c.name == ledger)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"no ledger named {ledger!r}")
        ledger_id, head = int(row.id), int(row.head_seq)
        # Lifts the tables' guards for this ledger, in this transaction only;
        # removed below, before the commit.
        conn.execute(projection_rebuilds.insert().values(ledger_id=ledger_id))
        for projection in projections:
            for table in projection.tables:
                conn.execute(table.delete().where(table.c.ledger_id == ledger_id))
        for projection in projections:
            projection.rebuild(conn, ledger_id, head, progress or (lambda _done: None))
        conn.execute(
            projection_rebuilds.delete().where(projection_rebuilds.c.ledger_id == ledger_id)
        )
    return head
