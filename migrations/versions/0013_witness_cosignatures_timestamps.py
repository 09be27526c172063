"""Witness cosignatures and RFC 3161 timestamps of checkpoints (docs/witnesses.md).

Both are evidence about a checkpoint that someone other than the operator
signed, so, like the checkpoints themselves, their rows are written once
and never changed: the same guards as migration 0002's.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

_GUARDED = ("checkpoint_cosignatures", "checkpoint_timestamps")


def upgrade() -> None:
    op.create_table(
        "checkpoint_cosignatures",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("witness", sa.String(512), nullable=False),
        sa.Column("signed_at", sa.BigInteger, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Column("received_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint(
            "ledger_id", "tree_size", "witness", name="pk_checkpoint_cosignatures"
        ),
    )
    op.create_table(
        "checkpoint_timestamps",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("attested_at", sa.String(40), nullable=False),
        sa.Column("authority", sa.Text, nullable=False),
        sa.Column("received_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "tree_size", name="pk_checkpoint_timestamps"),
    )
    dialect = op.get_bind().dialect.name
    for table in _GUARDED:
        if dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()"
            )
        else:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger: {action} on {table} is forbidden: "
                    "witness and timestamp evidence is append-only'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _GUARDED:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    op.drop_table("checkpoint_timestamps")
    op.drop_table("checkpoint_cosignatures")
