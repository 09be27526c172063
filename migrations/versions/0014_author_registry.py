"""The author registry (format §1.4) and tokens bound to an author.

``author_keys`` holds one row per ``author.registered`` or ``author.revoked``
record, a projection of the records like ``source_citations`` (migration
0012), with the same guards (``migrations.projection_guards``): it refuses
UPDATE and DELETE unless the ledger's id is in ``projection_rebuilds``. No record of those types can
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

from migrations.projection_guards import add_guards, drop_guards

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "author_keys"
_MESSAGE = "the author registry is derived from the records; run ledger projections rebuild"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("verifier_key", sa.String(400)),
        sa.PrimaryKeyConstraint("ledger_id", "seq", name="pk_" + TABLE),
    )
    add_guards(TABLE, _MESSAGE)
    op.add_column("api_tokens", sa.Column("author", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("author")
    drop_guards(TABLE)
    op.drop_table(TABLE)
