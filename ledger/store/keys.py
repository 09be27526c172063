"""The registry of signing keys: which verifier keys are active or retired,
and the signing identity (origin and key name) each was registered under.

A public key is registered once (a unique column holds its bytes): the same
key under a second name would be a second verifier key string for one key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.core.errors import NotFound
from ledger.core.identity import SigningIdentity
from ledger.core.signing import VerifierKey
from ledger.store.database import Database, raw_execute
from ledger.store.tables import signing_keys

__all__ = ["KeyRecord", "KeyRegistry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRecord:
    key_id: str
    name: str
    origin: str
    verifier_key: str
    status: str
    not_before: str
    not_after: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "origin": self.origin,
            "verifier_key": self.verifier_key,
            "status": self.status,
            "not_before": self.not_before,
            "not_after": self.not_after,
        }


def _record(row: sa.Row[Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row.key_id,
        name=row.name,
        origin=row.origin,
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

    def register(
        self, key: VerifierKey, *, origin: str, now: str, conn: Connection | None = None
    ) -> bool:
        """Record ``key`` as active, for checkpoints of ``origin``, unless its
        public key is known under any name; True when newly added."""
        if conn is None:
            try:
                with self.db.write() as write_conn:
                    return self.register(key, origin=origin, now=now, conn=write_conn)
            except sa.exc.IntegrityError:
                # Another process starting at once registered it first.
                return False
        known = conn.execute(
            sa.select(signing_keys.c.status).where(
                signing_keys.c.public_key == key.public_key.hex()
            )
        ).first()
        if known is not None:
            return False
        conn.execute(
            signing_keys.insert().values(
                key_id=key.key_id_hex,
                name=key.name,
                origin=origin,
                public_key=key.public_key.hex(),
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

    def identity(self, conn: Connection | None = None) -> SigningIdentity | None:
        """The identity of the newest active key (of the newest key when none
        is active); None before the first key is registered."""
        keys = self.all_keys(conn)
        if not keys:
            return None
        active = [k for k in keys if k.status == "active"]
        newest = (active or keys)[-1]
        return SigningIdentity(origin=newest.origin, name=newest.name)

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
