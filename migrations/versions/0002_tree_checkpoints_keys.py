"""Stored Merkle tree, signed checkpoints and signing keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_GUARDED = ("tree_nodes", "checkpoints")


def upgrade() -> None:
    # Only perfect subtrees are stored (2n rows for n leaves); a complete
    # subtree never changes, so rows are written once and never updated.
    # node_key = level << 56 | index (ledger.store.tree): one integer key lets a
    # proof fetch its O(log n) nodes with a single indexed IN list.
    op.create_table(
        "tree_nodes",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("node_key", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "node_key", name="pk_tree_nodes"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "tree_size", name="pk_checkpoints"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("verifier_key", sa.String(400), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("not_before", sa.String(27), nullable=False),
        sa.Column("not_after", sa.String(27), nullable=True),
        sa.PrimaryKeyConstraint("name", "key_id", name="pk_signing_keys"),
        sa.CheckConstraint("status IN ('active', 'retired')", name="ck_signing_keys_status"),
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
                    "stored records are append-only'); END"
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
    op.drop_table("signing_keys")
    op.drop_table("checkpoints")
    op.drop_table("tree_nodes")
