"""Ledgers, append-only records and idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Stored records are evidence: the database itself refuses to change them,
# so that a bug or a careless operator cannot rewrite history through SQL.
_PG_FORBID = """
CREATE FUNCTION ledger_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger: % on % is forbidden: stored records are append-only',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "ledgers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("head_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("last_recorded_at", sa.String(27), nullable=False, server_default=""),
    )
    op.create_table(
        "records",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("party", sa.String(32), nullable=True),
        sa.Column("topic", sa.String(63), nullable=True),
        sa.Column("occurred_at", sa.String(20), nullable=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("canonical", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "seq", name="pk_records"),
        sa.UniqueConstraint("ledger_id", "event_id", name="uq_records_event_id"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "key", name="pk_idempotency_keys"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FORBID)
        op.execute(
            "CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records "
            "FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()"
        )
        op.execute(
            "CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()"
        )
    elif dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER records_no_{action.lower()} BEFORE {action} ON records "
                f"BEGIN SELECT RAISE(ABORT, 'ledger: {action} on records is forbidden: "
                "stored records are append-only'); END"
            )
    else:  # pragma: no cover - guarded by ledger.store.database
        raise RuntimeError(f"unsupported database dialect {dialect!r}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS records_no_truncate ON records")
        op.execute("DROP TRIGGER IF EXISTS records_append_only ON records")
        op.execute("DROP FUNCTION IF EXISTS ledger_forbid_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS records_no_update")
        op.execute("DROP TRIGGER IF EXISTS records_no_delete")
    op.drop_table("idempotency_keys")
    op.drop_table("records")
    op.drop_table("ledgers")
