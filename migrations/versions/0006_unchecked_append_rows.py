"""PostgreSQL: no per-row foreign-key check on the rows every append writes.

``records``, ``tree_nodes`` and ``position_versions`` get one to three rows
per appended event. PostgreSQL checks a foreign key with a trigger per row
that queries ``ledgers`` and takes a KEY SHARE lock on the row it finds,
a large share of the database time of every appended event
(``scripts/bench.sh appends``, batches of 500). Those checks
cannot fail: every such row is written by the append transaction that
locked its ledger's row (``SELECT ... FOR UPDATE``) and read the id from it,
and ledgers are never deleted. The tables written once per append or less
(checkpoints, idempotency keys, fixes, cells, marks) keep theirs.

SQLite keeps all of its foreign keys: there the check is an index probe
inside the engine, and dropping one means copying the
table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

UNCHECKED = ("records", "tree_nodes", "position_versions")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    inspector = sa.inspect(bind)
    for table in UNCHECKED:
        for foreign_key in inspector.get_foreign_keys(table):
            if foreign_key["referred_table"] == "ledgers" and foreign_key["name"]:
                op.drop_constraint(foreign_key["name"], table, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in UNCHECKED:
        op.create_foreign_key(f"{table}_ledger_id_fkey", table, "ledgers", ["ledger_id"], ["id"])
