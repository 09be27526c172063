"""The author registry (format §1.4) and tokens bound to an author.

``author_keys`` holds one row per ``author.registered`` or ``author.revoked``
record, a projection of the records like ``source_citations`` (migration
0012), with the same guards: it refuses UPDATE and DELETE unless the
ledger's id is in ``projection_rebuilds``. No record of those types can
predate this revision (the types did not exist), so there is nothing to fill.

``api_tokens.author``, when set, names the author whose signature every
event appended with the token must carry.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "author_keys"
_MESSAGE = "the author registry is derived from the records; run ledger projections rebuild"
_REBUILDING = "EXISTS (SELECT 1 FROM projection_rebuilds WHERE ledger_id = OLD.ledger_id)"

_PG_GUARD = f"""
CREATE FUNCTION ledger_guard_{TABLE}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND {_REBUILDING} THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'ledger: % on % is forbidden: {_MESSAGE}',
    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        TABLE,
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("verifier_key", sa.String(400)),
        sa.PrimaryKeyConstraint("ledger_id", "seq", name="pk_" + TABLE),
    )
    if postgres:
        op.execute(_PG_GUARD)
        op.execute(
            f"CREATE TRIGGER {TABLE}_guard BEFORE UPDATE ON {TABLE}"
            f" FOR EACH ROW EXECUTE FUNCTION ledger_guard_{TABLE}()"
        )
        # The statement-level DELETE check of migration 0010, shared by the projections.
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_delete AFTER DELETE ON {TABLE}"
            " REFERENCING OLD TABLE AS gone FOR EACH STATEMENT"
            " EXECUTE FUNCTION ledger_guard_projection_delete()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION ledger_guard_{TABLE}()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE}"
                f" WHEN NOT {_REBUILDING} BEGIN SELECT RAISE(ABORT,"
                f" 'ledger: {operation} on {TABLE} is forbidden: {_MESSAGE}'); END"
            )
    op.add_column("api_tokens", sa.Column("author", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("author")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_delete ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_guard ON {TABLE}")
        op.execute(f"DROP FUNCTION IF EXISTS ledger_guard_{TABLE}()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_delete")
    op.drop_table(TABLE)
