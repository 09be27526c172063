"""Bearer tokens, and ledgers whose records only token holders may read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: a batch (copy-and-swap) migration of
    # ``ledgers`` cannot drop the old table while records reference it.
    op.add_column(
        "ledgers",
        sa.Column("public_read", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    # Only the SHA-256 of a token is kept: a stolen database yields no credentials.
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        # Space-separated scopes: read[:LEDGER], append[:PARTY], admin.
        sa.Column("scopes", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("revoked_at", sa.String(27), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    # SQLite >= 3.35 and PostgreSQL drop a column in place.
    op.execute("ALTER TABLE ledgers DROP COLUMN public_read")
