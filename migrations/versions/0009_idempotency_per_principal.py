"""Idempotency keys belong to the principal that sent them.

A key was unique per ledger, so one token's key blocked another token's
different request (422), and a token sending another's key and body was
handed that token's receipts. The key is now unique per (ledger,
principal). A stored key gets the principal that appended its records: the
``actor`` of the first record its response names, so a retry by the same
token still finds it. The downgrade keeps, per (ledger, key), the key of the
earliest append.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def _backfill_principals() -> None:
    bind = op.get_bind()
    keys = bind.execute(sa.text("SELECT ledger_id, key, response FROM idempotency_keys")).all()
    actor_of = sa.text("SELECT canonical FROM records WHERE ledger_id = :ledger AND seq = :seq")
    update = sa.text(
        "UPDATE idempotency_keys SET principal = :principal"
        " WHERE ledger_id = :ledger AND key = :key"
    )
    for ledger_id, key, response in keys:
        receipts = json.loads(response)
        canonical = bind.execute(
            actor_of, {"ledger": ledger_id, "seq": receipts[0]["seq"]}
        ).scalar()
        if canonical is None:  # no record behind it: nobody can replay it
            continue
        actor = json.loads(bytes(canonical))["actor"]
        bind.execute(update, {"principal": actor, "ledger": ledger_id, "key": key})


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("principal", sa.String(64), nullable=False, server_default=""))
    _backfill_principals()
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint("pk_idempotency_keys", type_="primary")
        batch.create_primary_key("pk_idempotency_keys", ["ledger_id", "principal", "key"])


def downgrade() -> None:
    op.execute(
        "DELETE FROM idempotency_keys WHERE EXISTS (SELECT 1 FROM idempotency_keys AS earlier"
        " WHERE earlier.ledger_id = idempotency_keys.ledger_id"
        " AND earlier.key = idempotency_keys.key"
        " AND (earlier.created_at < idempotency_keys.created_at"
        " OR (earlier.created_at = idempotency_keys.created_at"
        " AND earlier.principal < idempotency_keys.principal)))"
    )
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint("pk_idempotency_keys", type_="primary")
        batch.create_primary_key("pk_idempotency_keys", ["ledger_id", "key"])
        batch.drop_column("principal")
