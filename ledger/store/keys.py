"""The registry of signing keys: which verifier keys are active or retired."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.errors import NotFound
from ledger.core.signing import VerifierKey
from ledger.store.database import Database, raw_execute
from ledger.store.tables import signing_keys

__all__ = ["KeyRecord", "KeyRegistry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRecord:
    key_id: str
    name: str
    verifier_key: str
    status: str
    not_before: str
    not_after: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "verifier_key": self.verifier_key,
            "status": self.status,
            "not_before": self.not_before,
            "not_after": self.not_after,
        }


def _record(row: sa.Row[Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row.key_id,
        name=row.name,
        verifier_key=row.verifier_key,
        status=row.status,
        not_before=row.not_before,
        not_after=row.not_after,
    )


_SELECT_ACTIVE = (
    "SELECT verifier_key FROM signing_keys WHERE status = 'active' ORDER BY not_before, key_id"
)


class KeyRegistry:
    def __init__(self, *, database: Database) -> None:
        self.db = database

    def register(self, key: VerifierKey, *, now: str, conn: Connection | None = None) -> bool:
        """Record ``key`` as active unless known; True when newly added."""
        if conn is None:
            with self.db.write() as write_conn:
                return self.register(key, now=now, conn=write_conn)
        known = conn.execute(
            sa.select(signing_keys.c.status).where(signing_keys.c.verifier_key == key.to_string())
        ).first()
        if known is not None:
            return False
        conn.execute(
            signing_keys.insert().values(
                key_id=key.key_id_hex,
                name=key.name,
                verifier_key=key.to_string(),
                status="active",
                not_before=now,
                not_after=None,
            )
        )
        return True

    def all_keys(self, conn: Connection | None = None) -> list[KeyRecord]:
        if conn is None:
            with self.db.read() as read_conn:
                return self.all_keys(read_conn)
        rows = conn.execute(
            sa.select(signing_keys).order_by(signing_keys.c.not_before, signing_keys.c.key_id)
        ).all()
        return [_record(row) for row in rows]

    def active(self, conn: Connection) -> list[KeyRecord]:
        return [k for k in self.all_keys(conn) if k.status == "active"]

    @staticmethod
    def active_keys(conn: Connection) -> list[str]:
        """The active verifier key strings, oldest first (read by every append group)."""
        rows = raw_execute(conn, _SELECT_ACTIVE)
        return [str(row[0]) for row in rows]

    def retire(self, key_id: str, *, now: str) -> KeyRecord:
        with self.db.write() as conn:
            rows = [
                k for k in self.all_keys(conn) if k.key_id == key_id or k.verifier_key == key_id
            ]
            if not rows:
                raise NotFound(f"no signing key {key_id!r}")
            key = rows[0]
            conn.execute(
                signing_keys.update()
                .where(signing_keys.c.verifier_key == key.verifier_key)
                .values(status="retired", not_after=now)
            )
        return KeyRecord(**{**key.to_dict(), "status": "retired", "not_after": now})
