"""API tokens: created, listed, revoked, and resolved to a principal per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from ledger.access import (
    TOKEN_NAME_PATTERN,
    Principal,
    Scope,
    hash_token,
    new_token,
)
from ledger.core.errors import Conflict, InvalidParameter, NotFound
from ledger.core.times import format_recorded_at
from ledger.store.database import Database
from ledger.store.dbapi_reads import raw_read
from ledger.store.tables import api_tokens

__all__ = ["TokenInfo", "TokenStore"]

_LOOKUP = "SELECT name, scopes, revoked_at, author FROM api_tokens WHERE token_sha256 = ?"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInfo:
    name: str
    scopes: tuple[Scope, ...]
    created_at: str
    revoked_at: str | None
    # The author whose signature its appends must carry (format §1.4).
    author: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": [str(s) for s in self.scopes],
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "author": self.author,
        }


def _scopes(text: str) -> tuple[Scope, ...]:
    return tuple(Scope.parse(word) for word in text.split())


# Distinct live tokens a server remembers; beyond it, the cache starts over.
MAX_CACHED = 10_000


class TokenStore:
    def __init__(
        self, *, database: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.db = database
        self.clock = clock
        # Principals by token hash, kept only while revocations are heard
        # (the backend's ``RevocationNotices``).
        self._cache: dict[str, Principal] = {}
        self._caching = False
        # Bumped on every revocation or change of watch: a lookup that began
        # before it must not store what it read.
        self._generation = 0
        self._notices = database.backend.revocations(database.url)
        # A lookup costs less than the hop to a worker thread (``ledger.api.auth``).
        self.cheap_lookups = database.backend.cheap_token_lookups

    def watch_revocations(self) -> None:
        """Cache principals from now on, hearing revocations (see
        ``ledger.store.backend.RevocationNotices``)."""
        self._notices.watch(on_listening=self._listening, on_revoked=self._forget)

    def close(self) -> None:
        self._notices.stop()

    def _listening(self, listening: bool) -> None:
        self._caching = False
        self._forget()
        self._caching = listening

    def _forget(self) -> None:
        self._generation += 1
        self._cache = {}

    def check_revocations(self) -> bool:
        """Whether cached principals may be served now.

        False while nothing hears revocations, or while the notices cannot
        tell (``RevocationNotices.fresh``, which forgets every cached principal
        when it finds a revocation), so a principal cached before a
        revocation is never served after a check that began once the
        revocation was announced.
        """
        if not self._caching:
            return False
        return self._notices.fresh()

    def cached_principal(self, token: str, *, checked: bool | None = None) -> Principal | None:
        """The principal if this server has it cached (no database read).

        ``checked`` is what a ``check_revocations`` made since the request
        arrived returned; None makes that check now.
        """
        if checked is None:
            checked = self.check_revocations()
        if not checked or not self._caching:
            return None
        return self._cache.get(hash_token(token))

    def create(self, name: str, scopes: tuple[Scope, ...]) -> tuple[str, TokenInfo]:
        """A new token; the plain token is returned once and never stored."""
        if not TOKEN_NAME_PATTERN.match(name):
            raise InvalidParameter(
                "a token name is 1-64 letters, digits, '.', '_' or '-'", field="name"
            )
        if not scopes:
            raise InvalidParameter("a token needs at least one scope", field="scope")
        token = new_token()
        info = TokenInfo(
            name=name, scopes=scopes, created_at=format_recorded_at(self.clock()), revoked_at=None
        )
        try:
            with self.db.write() as conn:
                if conn.execute(
                    sa.select(api_tokens.c.name).where(api_tokens.c.name == name)
                ).first():
                    raise Conflict(f"a token named {name!r} exists (revoked names stay taken)")
                conn.execute(
                    api_tokens.insert().values(
                        name=name,
                        token_sha256=hash_token(token),
                        scopes=" ".join(str(s) for s in scopes),
                        created_at=info.created_at,
                    )
                )
        except exc.IntegrityError as e:
            raise Conflict(f"a token named {name!r} exists") from e
        return token, info

    def list(self) -> list[TokenInfo]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.name)).all()
        return [
            TokenInfo(
                name=r.name,
                scopes=_scopes(r.scopes),
                created_at=r.created_at,
                revoked_at=r.revoked_at,
                author=r.author,
            )
            for r in rows
        ]

    def revoke(self, name: str) -> TokenInfo:
        now = format_recorded_at(self.clock())
        with self.db.write() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name)).first()
            if row is None:
                raise NotFound(f"no token named {name!r}")
            revoked_at = row.revoked_at or now
            if row.revoked_at is None:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.name == name).values(revoked_at=now)
                )
            self._notices.announce_in(conn)
        self._forget()
        self._notices.announce(name, revoked_at)
        return TokenInfo(
            name=name,
            scopes=_scopes(row.scopes),
            created_at=row.created_at,
            revoked_at=revoked_at,
            author=row.author,
        )

    def bind_author(self, name: str, author: str | None) -> TokenInfo:
        """From now on every append with token ``name`` must be signed by
        ``author`` (format §1.4); None lifts the binding. Announced as a
        revocation is, so no server keeps serving the token's old principal."""
        with self.db.write() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name)).first()
            if row is None:
                raise NotFound(f"no token named {name!r}")
            conn.execute(api_tokens.update().where(api_tokens.c.name == name).values(author=author))
            self._notices.announce_in(conn)
        self._forget()
        self._notices.announce(name, format_recorded_at(self.clock()))
        return TokenInfo(
            name=name,
            scopes=_scopes(row.scopes),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            author=author,
        )

    def principal(self, token: str) -> Principal | None:
        """The live token's principal, or None (unknown or revoked)."""
        digest = hash_token(token)
        generation = self._generation
        with raw_read(self.db) as reader:
            row = reader.one(_LOOKUP, [digest])
        if row is None or row[2] is not None:
            return None
        principal = Principal(
            str(row[0]), _scopes(str(row[1])), author=None if row[3] is None else str(row[3])
        )
        if self._caching and self._generation == generation:
            if len(self._cache) >= MAX_CACHED:
                self._cache = {}
            self._cache[digest] = principal
        return principal
