"""Narrow first versions, and valid-time marks that bound snapshot scans.

A version whose ``cell`` is NULL is the record ``target_seq`` itself, as
stored; only corrected versions carry a cell of their own. The first version
of every position record is then a copy of a few indexed columns, which is
what makes a full rebuild cheap (the JSON is read again only for the handful
of cells a snapshot returns).

``position_marks`` holds, per block of 1024 seqs, the greatest
``occurred_at`` of any version known by the end of that block. A version
known at seq K cannot have occurred after the mark at or before K, so a
snapshot far behind the head starts its per-cell scan there instead of
stepping over every version recorded after K.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("position_versions") as batch:
        batch.alter_column("cell", existing_type=sa.Text, nullable=True)
    op.create_table(
        "position_marks",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        # The first seq of the block.
        sa.Column("known_from", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "known_from", name="pk_position_marks"),
    )
    # Versions written before this revision have no marks: derive them once.
    op.execute(
        "INSERT INTO position_marks (ledger_id, known_from, occurred_at)"
        " SELECT ledger_id, block, MAX(block_max) OVER"
        " (PARTITION BY ledger_id ORDER BY block ROWS UNBOUNDED PRECEDING)"
        " FROM (SELECT ledger_id, ((known_from - 1) / 1024) * 1024 + 1 AS block,"
        " MAX(occurred_at) AS block_max FROM position_versions GROUP BY ledger_id, block) b"
    )


def downgrade() -> None:
    op.drop_table("position_marks")
    # Older code reads every cell from the row: rebuild after downgrading.
    op.execute("DELETE FROM position_versions WHERE cell IS NULL")
    with op.batch_alter_table("position_versions") as batch:
        batch.alter_column("cell", existing_type=sa.Text, nullable=False)
