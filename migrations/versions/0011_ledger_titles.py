"""A human title and description for each ledger, set when it is created.

They are what a reader sees first on the ledger's page; neither is part of
any record, so neither is hashed, signed or exported.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases, as 0005 does: a copy-and-swap of
    # ``ledgers`` cannot drop the old table while records reference it.
    op.add_column("ledgers", sa.Column("title", sa.String(200), nullable=True))
    op.add_column("ledgers", sa.Column("description", sa.Text, nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 and PostgreSQL drop a column in place.
    op.execute("ALTER TABLE ledgers DROP COLUMN description")
    op.execute("ALTER TABLE ledgers DROP COLUMN title")
