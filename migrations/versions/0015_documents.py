"""Source documents, held by their SHA-256 (docs/documents.md).

``documents`` has one row per document a ledger holds: its hash, size and
media type; ``document_parts`` holds its bytes in parts of at most
``ledger.store.documents.PART_BYTES``, so a document goes in and out a part
at a time. Records cite a document by its hash (``source.document``), so
its bytes are evidence like the records': written once, never changed (the
same guards as migration 0013's).

``source_citations.document`` keeps the cited hash in the sources
projection. No record before this revision could cite a document (the
schemas had no such member), so every existing row rightly holds NULL.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None

_GUARDED = ("documents", "document_parts")


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("parts", sa.Integer, nullable=False),
        sa.Column("stored_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "sha256", name="pk_documents"),
    )
    op.create_table(
        "document_parts",
        sa.Column("ledger_id", sa.Integer, sa.ForeignKey("ledgers.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("ledger_id", "sha256", "part", name="pk_document_parts"),
    )
    op.add_column("source_citations", sa.Column("document", sa.Text))
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
                    "source documents are append-only'); END"
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
    op.drop_table("document_parts")
    op.drop_table("documents")
    # Not batch mode: on SQLite it would rebuild the table without its guards.
    op.execute("ALTER TABLE source_citations DROP COLUMN document")
