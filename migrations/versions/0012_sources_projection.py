"""The sources projection: who reported what (docs/sources.md).

``source_citations`` holds one row per record that cites a source and one
per fix of any record (``ledger.core.sources``), and is filled here from
the records already stored, the same way ``ledger projections rebuild``
fills it. Like the positions tables (migration 0010) it refuses UPDATE and
DELETE unless the ledger's id is in ``projection_rebuilds``; it is never
updated otherwise, since a correction adds a row.

On PostgreSQL the table carries no foreign key to ``ledgers``: appends
write its rows, and migration 0006 says why those skip the per-row check.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.projection_guards import add_guards, drop_guards

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "source_citations"
_MESSAGE = "the sources projection is derived from the records; run ledger projections rebuild"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    references = [] if postgres else [sa.ForeignKeyConstraint(["ledger_id"], ["ledgers.id"])]
    op.create_table(
        TABLE,
        sa.Column("ledger_id", sa.Integer, nullable=False),
        sa.Column("target_seq", sa.BigInteger, nullable=False),
        sa.Column("known_from", sa.BigInteger, nullable=False),
        sa.Column("fix", sa.String(10), nullable=False),
        # UTF-8 bytes: a source's name or url may hold NUL, which PostgreSQL text cannot.
        sa.Column("name", sa.LargeBinary),
        sa.Column("kind", sa.Text),
        sa.Column("url", sa.LargeBinary),
        sa.Column("reported_at", sa.Text),
        sa.Column("party", sa.Text),
        sa.Column("topic", sa.Text),
        sa.Column("occurred_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "target_seq", "known_from", name="pk_" + TABLE),
        *references,
    )
    op.create_index("ix_source_citations_name", TABLE, ["ledger_id", "name"])
    add_guards(TABLE, _MESSAGE)
    _fill()


def _fill() -> None:
    """Project every stored ledger, as ``ledger projections rebuild`` does."""
    from ledger.store.sources import fill_ledger  # the one derivation of the rows

    conn = op.get_bind()
    for (ledger_id,) in conn.execute(sa.text("SELECT id FROM ledgers ORDER BY id")).all():
        # The table as this revision makes it: its document column comes in 0015.
        fill_ledger(conn, int(ledger_id), documents=False)


def downgrade() -> None:
    drop_guards(TABLE)
    op.drop_index("ix_source_citations_name", table_name=TABLE)
    op.drop_table(TABLE)
