"""Signing identity stored with each key; one registration per public key.

Revision ID: 0008
Revises: 0007

``origin`` holds the checkpoint origin (host part) a key signs for, so a
restart reads it from here instead of deriving it from the host name.
``public_key`` (hex of the 32 key bytes) is unique: databases whose key was
registered again under each new host name keep the first registration, the
name verifiers were given, active if any of its copies was.
"""

from __future__ import annotations

import base64
import binascii

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_SIGNATURE_DASH = "\u2014 "


def _public_key(verifier_key: str) -> str:
    raw = base64.b64decode(verifier_key.split("+", 2)[2])
    return raw[1:].hex()


def _signed_by(note: str, name: str, key_id: str) -> bool:
    for line in note.split("\n\n", 1)[-1].splitlines():
        if not line.startswith(_SIGNATURE_DASH):
            continue
        parts = line[len(_SIGNATURE_DASH) :].split(" ")
        if len(parts) != 2 or parts[0] != name:
            continue
        try:
            if base64.b64decode(parts[1])[:4].hex() == key_id:
                return True
        except binascii.Error:
            continue
    return False


def _origin_of(conn: sa.Connection, name: str, key_id: str) -> str:
    """The origin of a checkpoint this key signed; the key's name (the old
    default origin) when it signed none."""
    pattern = f"%{_SIGNATURE_DASH}{name} %"
    notes = conn.execute(sa.text("SELECT note FROM checkpoints WHERE note LIKE :p"), {"p": pattern})
    for (note,) in notes:
        if _signed_by(note, name, key_id):
            # A ledger name holds no '/': what precedes the last one is the host part.
            return str(note.split("\n", 1)[0].rsplit("/", 1)[0])
    return name


def upgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("origin", sa.String(255), nullable=True))
        batch.add_column(sa.Column("public_key", sa.String(64), nullable=True))
    rows = conn.execute(
        sa.text(
            "SELECT key_id, name, verifier_key, status, not_before, not_after"
            " FROM signing_keys ORDER BY not_before, key_id"
        )
    ).all()
    kept: dict[str, list[sa.Row[tuple[str, str, str, str, str, str | None]]]] = {}
    for row in rows:
        kept.setdefault(_public_key(row.verifier_key), []).append(row)
    for public_key, copies in kept.items():
        first, *later = copies
        for copy in later:
            conn.execute(
                sa.text("DELETE FROM signing_keys WHERE verifier_key = :v"),
                {"v": copy.verifier_key},
            )
        active = any(copy.status == "active" for copy in copies)
        conn.execute(
            sa.text(
                "UPDATE signing_keys SET origin = :o, public_key = :p, status = :s,"
                " not_after = :a WHERE verifier_key = :v"
            ),
            {
                "o": _origin_of(conn, first.name, first.key_id),
                "p": public_key,
                "s": "active" if active else first.status,
                "a": None if active else first.not_after,
                "v": first.verifier_key,
            },
        )
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("origin", existing_type=sa.String(255), nullable=False)
        batch.alter_column("public_key", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_signing_keys_public_key", ["public_key"])


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_constraint("uq_signing_keys_public_key", type_="unique")
        batch.drop_column("public_key")
        batch.drop_column("origin")
