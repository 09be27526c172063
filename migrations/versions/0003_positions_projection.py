"""The positions projection (format §6), maintained inside each append.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # known_at given as a time means "the last record recorded by then".
    op.create_index("ix_records_recorded_at", "records", ["ledger_id", "recorded_at"])
    # Which record fixed which: validation ("already retracted?") and history.
    op.create_table(
        "record_fixes",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("fix_seq", sa.BigInteger, nullable=False),
        sa.Column("target_seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "fix_seq", name="pk_record_fixes"),
        sa.CheckConstraint("kind IN ('corrected', 'retracted')", name="ck_record_fixes_kind"),
    )
    op.create_index("ix_record_fixes_target", "record_fixes", ["ledger_id", "target_seq"])
    # Bitemporal versions of each position record: a version is what the
    # ledger said about that record from seq known_from until known_to (a
    # later correction or retraction), in valid time occurred_at.
    op.create_table(
        "position_versions",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("target_seq", sa.BigInteger, nullable=False),
        sa.Column("known_from", sa.BigInteger, nullable=False),
        sa.Column("known_to", sa.BigInteger, nullable=True),
        sa.Column("party", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(63), nullable=False),
        # '' for the party's own statement, else the claiming party.
        sa.Column("claimant", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.String(20), nullable=False),
        sa.Column("cell", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint(
            "ledger_id", "target_seq", "known_from", name="pk_position_versions"
        ),
    )
    op.create_index(
        "ix_position_versions_cell",
        "position_versions",
        ["ledger_id", "party", "topic", "claimant", "occurred_at", "target_seq"],
    )
    # The distinct (party, topic, claimant) cells: a snapshot is one indexed
    # lookup per cell, never a scan of the ledger.
    op.create_table(
        "position_cells",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("party", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(63), nullable=False),
        sa.Column("claimant", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint(
            "ledger_id", "party", "topic", "claimant", name="pk_position_cells"
        ),
    )


def downgrade() -> None:
    op.drop_table("position_cells")
    op.drop_index("ix_position_versions_cell", table_name="position_versions")
    op.drop_table("position_versions")
    op.drop_index("ix_record_fixes_target", table_name="record_fixes")
    op.drop_table("record_fixes")
    op.drop_index("ix_records_recorded_at", table_name="records")
